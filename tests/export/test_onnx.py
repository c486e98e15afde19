"""Dynamic-shape ONNX export: each part against PyTorch on random sizes; metadata read back."""
from __future__ import annotations

import json

import onnx
import onnxruntime as ort
import pytest
import torch

from asr.export.format import PARTS, decoding_parts, read_file_metadata, read_folder_metadata
from asr.export.onnx import PARITY_TOLERANCE, parity, random_cases
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from asr.tokenizer.base import read_units


def test_each_part_matches_pytorch_on_random_sizes(random_loaded, random_onnx):
    sessions = {part: ort.InferenceSession(str(random_onnx / spec.file), providers=["CPUExecutionProvider"])
                for part, spec in PARTS.items()}
    cases = random_cases(random_loaded, seed=1)
    assert len({(c["B"], c["T"]) for c in cases}) == len(cases) > 1
    diffs = parity(random_loaded, sessions, cases)
    assert set(diffs) == set(PARTS)
    assert all(d <= PARITY_TOLERANCE for d in diffs.values()), diffs


def test_every_file_carries_the_decoding_metadata(random_loaded, random_onnx):
    model = random_loaded.model
    for spec in PARTS.values():
        meta = read_file_metadata(random_onnx / spec.file)
        tokenizer, fbank, cmvn = decoding_parts(meta, spec.file)
        assert tokenizer.units == random_loaded.tokenizer.units
        assert fbank == random_loaded.fbank
        assert cmvn.to_dict() == random_loaded.cmvn.to_dict()
        assert (meta["vocab_size"], meta["blank_id"], meta["sos_id"], meta["eos_id"]) == (
            model.vocab_size, model.ctc.blank_id, model.sos_id, model.eos_id)
        assert meta["model_config"] == random_loaded.meta["model_config"]
        assert meta["profile"] == {"kind": "dynamic"}
    assert read_units(random_onnx / "units.txt") == random_loaded.tokenizer.units


def test_backend_checks_the_folder_and_short_input(random_onnx, random_static):
    with pytest.raises(ValueError, match="static-shape export"):
        read_folder_metadata(random_static, "dynamic")
    backend = OnnxRuntimeBackend(random_onnx, num_threads=1)
    with pytest.raises(ValueError, match="too short"):
        backend.encode(torch.zeros(1, 3, 80), torch.tensor([3]))


def test_the_exported_decoder_keeps_its_reverse_weight(random_onnx):
    backend = OnnxRuntimeBackend(random_onnx, num_threads=1)
    backend.set_reverse_weight(None)
    backend.set_reverse_weight(0.0)  # the model's own
    with pytest.raises(ValueError, match="torch backend"):
        backend.set_reverse_weight(0.5)


def test_metadata_says_everything_an_independent_reader_needs(random_loaded, random_onnx):
    from asr.export.format import DECODER_CONVENTIONS, parse_metadata

    meta = read_file_metadata(random_onnx / PARTS["encoder"].file)
    assert meta["fbank_options"] == random_loaded.fbank.kaldi_options()
    assert meta["fbank_options"]["waveform_scale"] == 32768 and meta["fbank_options"]["dither"] == 0
    assert meta["decoder_conventions"] == DECODER_CONVENTIONS
    assert meta["model_type"] == "conformer_ctc_attention" and meta["producer"].startswith("mandarin-asr ")
    props = {p.key: p.value for p in onnx.load(str(random_onnx / PARTS["encoder"].file)).metadata_props}
    parse_metadata(props, "encoder.onnx")  # as stored: accepted
    for key, value in (("fbank_options", json.dumps({**meta["fbank_options"], "high_freq": -400.0})),
                       ("model_type", "transformer_ctc_attention"), ("producer", "x" * 50)):
        with pytest.raises(ValueError, match=key):
            parse_metadata({**props, key: value}, "encoder.onnx")


def test_metadata_is_read_without_the_onnx_package_as_onnx_reads_it(random_onnx, random_static, tmp_path):
    from asr.export.format import onnx_metadata_props

    for path in [*random_onnx.glob("*.onnx"), *random_static.glob("*.onnx")]:
        assert onnx_metadata_props(path) == {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    bad = tmp_path / "encoder.onnx"
    for data in (b"", b"not an ONNX file at all", (random_onnx / "ctc.onnx").read_bytes()[:-7]):
        bad.write_bytes(data)
        with pytest.raises(ValueError, match="not an ONNX file"):
            read_file_metadata(bad)
