"""A downloaded model file or checkpoint must not be able to run code."""
from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from asr.average import read_checkpoint
from asr.modelfile import FORMAT_VERSION, load_model_file
from asr.utils.safe_instantiate import UnsafeConfigError, check_targets


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/asr_pickle_attack",))


def test_pickled_code_in_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Boom()}, path)
    if os.path.exists("/tmp/asr_pickle_attack"):
        os.unlink("/tmp/asr_pickle_attack")
    with pytest.raises(ValueError, match="evil.ckpt"):
        read_checkpoint(path)
    assert not os.path.exists("/tmp/asr_pickle_attack")


def test_a_target_outside_the_project_is_refused(tmp_path):
    path = tmp_path / "evil.safetensors"
    meta = {"model_config": {"_target_": "os.system", "command": "echo pwned > /tmp/asr_target_attack"},
            "tokenizer": {"kind": "char", "units": ["<blank>", "<unk>", "<sos/eos>"]},
            "features": {}, "cmvn": {"frames": 1, "sum": [0.0], "sum_sq": [1.0]}}
    save_file({"x": torch.zeros(1)}, path, metadata={"format_version": str(FORMAT_VERSION),
                                                     **{k: json.dumps(v) for k, v in meta.items()}})
    with pytest.raises(UnsafeConfigError, match="os.system"):
        load_model_file(path)
    assert not os.path.exists("/tmp/asr_target_attack")


def test_nested_targets_are_checked_too():
    with pytest.raises(UnsafeConfigError, match=r"encoder\.layers\[1\]\._target_"):
        check_targets({"_target_": "asr.model.asr_model.ASRModel",
                       "encoder": {"layers": [{"_target_": "asr.x"}, {"_target_": "subprocess.run"}]}})
    check_targets({"_target_": "asr.model.asr_model.ASRModel", "encoder": {"_target_": "asr.model.encoder.ConformerEncoder"}})
