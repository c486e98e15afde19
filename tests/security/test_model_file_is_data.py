"""A model file (and an exported folder) is data: a crafted one must not be able to call any function.

Each attack edits only the metadata of a real model file (or of a real exported folder's ONNX files) and checks
three things: the load is refused with a one-line message naming the file and the key; the file the attack
would write is not there; and an audit hook saw no process started and no file opened for writing.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import asr
from asr.export.format import PARTS
from asr.export.om import export_static_folder, static_profile
from asr.export.onnx import export_folder
from asr.inference.cli import EXIT_CANNOT_START
from asr.inference.backends.om_backend import OMBackend
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from asr.model.registry import REGISTRY, build_model
from asr.modelfile import load_model_file
from tests.export.conftest import SMALL_PROFILE, write_random_model_file

AUDITED = Path(__file__).with_name("audited.py")
ROOT = Path(__file__).resolve().parents[2]
PROCESS_EVENTS = {"os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty"}
_recording: list[list[str]] = []


def _hook(event: str, args: tuple) -> None:
    if _recording and (event in PROCESS_EVENTS or (event == "open" and isinstance(args[1], str)
                                                   and any(c in args[1] for c in "wax+"))):
        _recording[-1].append(f"{event} {args[:2]!r}")


sys.addaudithook(_hook)  # stays for the session; records only inside `audit()`


@contextmanager
def audit():
    """Collect the process starts and writing opens done inside the block (this process)."""
    _recording.append([])
    try:
        yield _recording[-1]
    finally:
        _recording.pop()


# ------------------------------------------------------------------------------------------- the attacks

def attacks(config: dict, tmp: Path) -> dict[str, dict | str]:
    """Name -> the edited ``model_config`` (a dict, stored as JSON) or the raw metadata string itself."""
    written, marker = tmp / "owned.jsonl", tmp / "pwned"
    encoder = config["encoder"]
    return {
        "a project function with file-writing arguments": {
            "_target_": "asr.utils.io.write_jsonl", "path": str(written), "rows": [{"owned": 1}], "_convert_": "all"},
        "an attribute chain to os.system": {"_target_": "asr.utils.io.os.system", "command": f"touch {marker}"},
        "_args_ on the model class": {**config, "_args_": [f"touch {marker}"]},
        "_args_ with os.system in a sub-module": {**config, "encoder": {
            "_target_": "asr.model.encoder.os.system", "_args_": [f"touch {marker}"]}},
        "_convert_": {**config, "_convert_": "all"},
        "_partial_": {**config, "_partial_": True},
        "_recursive_": {**config, "encoder": {**encoder, "_recursive_": False}},
        "a registered class's module plus an attribute": {**config, "_target_": "asr.model.asr_model.torch.save",
                                                          "obj": {"x": 1}, "f": str(written)},
        "a registered class plus an attribute": {**config, "encoder": {
            **encoder, "_target_": "asr.model.encoder.ConformerEncoder.register_buffer"}},
        "an unknown keyword argument": {**config, "encoder": {**encoder, "evil": 1}},
        "an object where a plain value belongs": {**config, "encoder": {
            **encoder, "d_model": {"_target_": "asr.utils.io.os.system", "command": f"touch {marker}"}}},
        "a registered class in the wrong place": {**config, "_target_": "asr.model.encoder.ConformerEncoder"},
        "a non-JSON value (NaN)": json.dumps({**config, "encoder": {**encoder, "dropout": float("nan")}}),
        "a non-JSON document (a Python literal)": repr({"_target_": "asr.utils.io.os.system", "command": "id"}),
    }


def edited_model_file(src: Path, dst: Path, model_config: dict | str) -> Path:
    """``src`` with its weights and other metadata unchanged and ``model_config`` replaced."""
    with safe_open(str(src), framework="pt") as f:
        metadata = dict(f.metadata())
    metadata["model_config"] = model_config if isinstance(model_config, str) else json.dumps(model_config)
    save_file(load_file(str(src)), str(dst), metadata=metadata)
    return dst


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return write_random_model_file(tmp_path_factory.mktemp("model") / "model.safetensors")


@pytest.fixture(scope="module")
def real_config(model_file) -> dict:
    with safe_open(str(model_file), framework="pt") as f:
        return json.loads(f.metadata()["model_config"])


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "a.wav"
    sf.write(path, 0.1 * np.sin(np.arange(16000) / 10).astype(np.float32), 16000)
    return path


def test_the_unedited_file_loads(model_file):
    assert load_model_file(model_file).model.vocab_size > 0  # so that a refusal below is the edit's doing


def test_every_attack_through_a_model_file_is_refused_without_effect(model_file, real_config, tmp_path):
    for name, evil in attacks(real_config, tmp_path).items():
        path = edited_model_file(model_file, tmp_path / "evil.safetensors", evil)
        with audit() as events, pytest.raises(ValueError) as refused:
            load_model_file(path)
        message = str(refused.value)
        assert message.startswith(f"{path}: metadata key 'model_config'"), (name, message)
        assert "\n" not in message, (name, message)
        assert events == [], (name, events)
        assert not (tmp_path / "owned.jsonl").exists() and not (tmp_path / "pwned").exists(), name


@pytest.mark.parametrize("attack", ["a project function with file-writing arguments", "an attribute chain to os.system"])
def test_asr_transcribe_refuses_the_attack_in_one_line_and_starts_nothing(attack, model_file, real_config, wav,
                                                                          tmp_path):
    path = edited_model_file(model_file, tmp_path / "evil.safetensors", attacks(real_config, tmp_path)[attack])
    r = subprocess.run([sys.executable, str(AUDITED), str(tmp_path), "asr.inference.cli", str(wav), "--model",
                        str(path)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == EXIT_CANNOT_START, r.stderr
    assert r.stderr.startswith(f"asr-transcribe: cannot load the model: {path}: metadata key 'model_config'")
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert json.loads(r.stdout.splitlines()[-1].removeprefix("AUDIT ")) == []
    assert not (tmp_path / "owned.jsonl").exists() and not (tmp_path / "pwned").exists()


def test_bad_tokenizer_features_cmvn_or_training_lengths_are_refused_naming_the_key(model_file, tmp_path):
    lengths = {"utterances": 1, "mean": 1.0, "p50": 1.0, "p90": 1.0, "p99": 1.0, "max": 1.0}
    edits = [("tokenizer", {"kind": "char", "units": ["<blank>", "<unk>", "<sos/eos>"], "_target_": "os.system"}),
             ("features", {"num_mel_bins": 80, "_target_": "asr.utils.io.os.system"}),
             ("cmvn", {"frames": 1, "sum": [0.0], "sum_sq": "[1.0]"}),
             ("training_lengths", {"_target_": "os.system", "command": "id"}),
             ("training_lengths", "NaN"),
             ("training_lengths", {**lengths, "p99": "1.0"}),
             ("training_lengths", {**lengths, "max": 0.5})]
    for key, value in edits:
        with safe_open(str(model_file), framework="pt") as f:
            metadata = dict(f.metadata())
        metadata[key] = value if isinstance(value, str) else json.dumps(value)
        path = tmp_path / f"evil_{key}.safetensors"
        save_file(load_file(str(model_file)), str(path), metadata=metadata)
        with pytest.raises(ValueError, match=rf"^{path}: metadata key '{key}'"):
            load_model_file(path)


# ------------------------------------------------------------------------------ every callable of `asr`

def module_level_callables() -> dict[str, object]:
    """``module.name`` -> object for every callable defined in or imported into any module of ``asr``."""
    found = {}
    for info in pkgutil.walk_packages(asr.__path__, "asr."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional dependency (e.g. an NPU runtime) missing: nothing of it can be named
            continue
        for name, value in vars(module).items():
            if callable(value):
                found[f"{info.name}.{name}"] = value
            elif hasattr(value, "__dict__") and type(value).__name__ == "module":  # e.g. asr.utils.io.os.system
                for attr in ("system", "popen", "remove", "open"):
                    if callable(getattr(value, attr, None)):
                        found[f"{info.name}.{name}.{attr}"] = getattr(value, attr)
    return found


def test_no_callable_of_the_package_but_the_registered_classes_can_be_built(real_config):
    callables = module_level_callables()
    assert len(callables) > 300 and "asr.utils.io.write_jsonl" in callables and "asr.utils.io.os.system" in callables
    registered = {name for name, entry in REGISTRY.items()}
    encoder_target = real_config["encoder"]["_target_"]
    built_root, built_encoder = set(), set()
    for name in callables:
        for where, config in (("root", {**real_config, "_target_": name}),
                              ("encoder", {**real_config, "encoder": {**real_config["encoder"], "_target_": name}})):
            try:
                build_model(config, "model file: metadata key 'model_config'")
            except ValueError:
                continue
            (built_root if where == "root" else built_encoder).add(name)
    # the real config builds, and only with its own classes where they belong
    assert built_root == {real_config["_target_"]} and built_encoder == {encoder_target}
    assert (built_root | built_encoder) <= registered


# ------------------------------------------------------------------ the same attacks through exported folders

def edit_onnx_metadata(folder: Path, part: str, key: str, value: str) -> None:
    path = folder / PARTS[part].file
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    props[key] = value
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(path))


@pytest.fixture(scope="module")
def exported(model_file, tmp_path_factory) -> dict[str, Path]:
    loaded = load_model_file(model_file)
    out = tmp_path_factory.mktemp("exported")
    export_folder(loaded, out / "dynamic", "v1")
    export_static_folder(loaded, out / "static", "v1", static_profile(loaded, **SMALL_PROFILE))
    return {"dynamic": out / "dynamic", "static": out / "static"}


BACKENDS = {
    "onnxruntime": ("dynamic", lambda d: OnnxRuntimeBackend(d, num_threads=1)),
    "om (onnxruntime)": ("static", lambda d: OMBackend(d, runtime="onnxruntime", num_threads=1)),
    "om (acl)": ("static", lambda d: OMBackend(d, runtime="acl", acl=object())),  # refused before any ACL call
}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_every_attack_through_an_exported_folder_is_refused_by_the_backend(backend, exported, real_config, tmp_path):
    kind, make = BACKENDS[backend]
    make(exported[kind]) if backend != "om (acl)" else None  # the unedited folder loads
    for part in ("encoder", "decoder"):  # the encoder's metadata is the one used, and every file is checked
        for name, evil in attacks(real_config, tmp_path).items():
            folder = tmp_path / "folder"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(exported[kind], folder)
            edit_onnx_metadata(folder, part, "model_config", evil if isinstance(evil, str) else json.dumps(evil))
            with audit() as events, pytest.raises(ValueError) as refused:
                make(folder)
            assert str(refused.value).startswith(f"{folder / PARTS[part].file}: metadata key 'model_config'"), (
                name, str(refused.value))
            assert events == [], (name, events)
            assert not (tmp_path / "owned.jsonl").exists() and not (tmp_path / "pwned").exists(), name


@pytest.mark.parametrize("key, value", [
    ("features", json.dumps({"_target_": "asr.utils.io.os.system", "command": "id"})),
    ("tokenizer", json.dumps({"kind": "char", "units": ["<blank>", "<unk>", "<sos/eos>"], "_args_": ["id"]})),
    ("cmvn", "NaN"),
    ("subsampling", "conv2d4.__class__"),
    ("profile", json.dumps({"kind": "static", "frames": "1001"})),
    ("vocab_size", "1e9"),
    ("training_lengths", json.dumps({"_target_": "asr.utils.io.os.system", "command": "id"})),
    ("training_lengths", "Infinity"),
])
def test_bad_values_of_other_metadata_keys_are_refused_naming_the_key(key, value, exported, tmp_path):
    folder = tmp_path / "folder"
    shutil.copytree(exported["static"], folder)
    edit_onnx_metadata(folder, "encoder", key, value)
    with pytest.raises(ValueError, match=rf"^{folder / 'encoder.onnx'}: metadata key '{key}'"):
        OMBackend(folder, runtime="onnxruntime", num_threads=1)


def test_asr_transcribe_refuses_an_edited_folder_in_one_line(exported, real_config, wav, tmp_path):
    folder = tmp_path / "folder"
    shutil.copytree(exported["dynamic"], folder)
    evil = attacks(real_config, tmp_path)["a project function with file-writing arguments"]
    edit_onnx_metadata(folder, "encoder", "model_config", json.dumps(evil))
    r = subprocess.run([sys.executable, str(AUDITED), str(tmp_path), "asr.inference.cli", str(wav), "--model",
                        str(folder)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == EXIT_CANNOT_START, r.stderr
    assert r.stderr.startswith(f"asr-transcribe: cannot load the model: {folder / 'encoder.onnx'}: metadata key")
    assert len(r.stderr.strip().splitlines()) == 1
    assert json.loads(r.stdout.splitlines()[-1].removeprefix("AUDIT ")) == []
    assert not (tmp_path / "owned.jsonl").exists()
