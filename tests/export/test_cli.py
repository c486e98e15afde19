"""asr-transcribe as a user runs it: bad files never stop a run, folders and patterns, exit status, and the same
text as asr.decode for the same utterance (mono and stereo) on every backend."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_dir

import asr.inference.cli as cli
from asr.data.audio import load_audio
from asr.data.text import normalize_text
from asr.decode import run as decode_run
from asr.inference.cli import EXIT_CANNOT_START, main, open_recognizer
from asr.utils.io import write_jsonl

ROOT = Path(__file__).resolve().parents[2]
MODE = "ctc_greedy_search"


@pytest.fixture(scope="module")
def good_files(test_utterances, tmp_path_factory) -> list[Path]:
    """Two test utterances as wavs."""
    folder = tmp_path_factory.mktemp("good")
    paths = [folder / f"good{i}.wav" for i in range(2)]
    for path, (x, sr) in zip(paths, test_utterances[:2]):
        sf.write(path, x, sr, subtype="PCM_16")
    return paths


def bad_files(folder: Path, good: Path) -> dict[str, Path]:
    """The damaged inputs of the issue: truncated FLAC and WAV, an empty file, text named .wav, a folder."""
    signal, sr = sf.read(good, dtype="float32")
    files = {"truncated flac": folder / "cut.flac", "truncated wav": folder / "cut.wav", "empty": folder / "empty.wav",
             "text": folder / "notes.wav", "folder": folder / "a_folder"}
    sf.write(folder / "whole.flac", signal, sr)
    files["truncated flac"].write_bytes((folder / "whole.flac").read_bytes()[:3000])
    sf.write(folder / "whole.wav", signal, sr, subtype="PCM_16")
    files["truncated wav"].write_bytes((folder / "whole.wav").read_bytes()[: 44 + len(signal)])  # half the samples
    files["empty"].write_bytes(b"")
    files["text"].write_text("not audio\n")
    files["folder"].mkdir()
    (files["folder"] / "readme.txt").write_text("no audio here")
    return files


MESSAGES = {"truncated flac": "(truncated|cannot read audio)", "truncated wav": "truncated: the WAV header promises",
            "empty": "empty file", "text": "cannot read audio", "folder": "is a folder with no audio files"}


def test_bad_files_are_reported_and_nothing_after_them_is_lost(random_onnx, good_files, tmp_path, capsys):
    bad = bad_files(tmp_path, good_files[0])
    names = [bad["truncated flac"], bad["truncated wav"], good_files[0], bad["empty"], bad["text"], bad["folder"],
             good_files[1]]
    expected = open_recognizer(str(random_onnx), threads=1).transcribe([load_audio(p) for p in good_files], MODE)
    assert all(expected)
    base = [str(n) for n in names] + ["--model", str(random_onnx), "--mode", MODE, "--threads", "1"]

    assert main(base) == len(bad)  # the exit status counts the failures
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{good_files[0]}\t{expected[0]}", f"{good_files[1]}\t{expected[1]}"]
    for key, path in bad.items():
        assert [line for line in err.splitlines() if line.startswith(f"asr-transcribe: {path}: ")], (key, err)
        assert any(line.startswith(f"asr-transcribe: {path}: ") and __import__("re").search(MESSAGES[key], line)
                   for line in err.splitlines()), (key, err)
    assert f"asr-transcribe: {len(bad)} of {len(names)} file(s) failed:" in err

    assert main([*base, "--json"]) == len(bad)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in rows] == [str(n) for n in names]  # one line per input, in order
    for row in rows:
        if Path(row["file"]) in good_files:
            assert row["error"] is None and row["text"] == expected[good_files.index(Path(row["file"]))]
        else:
            assert row["error"] and row["text"] is None

    assert main([str(bad["truncated wav"]), *base[len(names):], "--allow-truncated"]) == 0
    assert "truncated" in capsys.readouterr().err  # still noted


def test_an_exception_while_decoding_one_file_fails_that_file_only(random_onnx, good_files, monkeypatch, capsys):
    real = cli.transcribe_file

    def flaky(recognizer, audio, *args, **kwargs):
        if audio.name == str(good_files[0]):
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : something broke")
        return real(recognizer, audio, *args, **kwargs)

    monkeypatch.setattr(cli, "transcribe_file", flaky)
    assert main([*map(str, good_files), "--model", str(random_onnx), "--mode", MODE, "--threads", "1"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{good_files[1]}\t")
    assert f"asr-transcribe: {good_files[0]}: RuntimeError: [ONNXRuntimeError]" in err


def test_notes_for_audio_that_was_changed_or_holds_no_speech(random_onnx, good_files, tmp_path, capsys):
    signal, sr = sf.read(good_files[0], dtype="float32")
    files = {"stereo": tmp_path / "stereo.wav", "8k": tmp_path / "8k.wav", "silent": tmp_path / "silent.wav"}
    sf.write(files["stereo"], np.stack([signal, 0.5 * signal], axis=1), sr)
    sf.write(files["8k"], signal[::2], 8000)
    sf.write(files["silent"], np.zeros(32000, np.float32), sr)
    assert main([*map(str, files.values()), "--model", str(random_onnx), "--mode", MODE, "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    printed = dict(line.split("\t") for line in out.splitlines())
    assert printed[str(files["stereo"])] and printed[str(files["silent"])] == ""
    for key, message in [("stereo", "2 channels mixed down"), ("8k", "resampled 8000 Hz -> 16000 Hz"),
                         ("silent", "no speech found")]:
        assert f"asr-transcribe: {files[key]}: {message}" in err
    assert main([str(files["8k"]), "--model", str(random_onnx), "--no-resample", "--threads", "1"]) == 1
    assert "resampling is off" in capsys.readouterr().err


def test_folders_and_patterns(random_onnx, good_files, tmp_path, capsys):
    top = tmp_path / "recordings"
    (top / "day2").mkdir(parents=True)
    for name, source in [("a.wav", good_files[0]), ("day2/b.wav", good_files[1])]:
        (top / name).write_bytes(source.read_bytes())
    (top / "notes.txt").write_text("not listed")
    args = ["--model", str(random_onnx), "--mode", MODE, "--threads", "1"]

    def files(*inputs: str) -> list[str]:
        main([*inputs, *args])
        return [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]

    assert files(str(top)) == [str(top / "a.wav")]
    assert files(str(top), "--recursive") == [str(top / "a.wav"), str(top / "day2/b.wav")]
    assert files(str(top / "*.wav")) == [str(top / "a.wav")]
    assert files(str(top / "**" / "*.wav"), "--recursive") == [str(top / "a.wav"), str(top / "day2/b.wav")]
    assert main([str(top / "day2" / "*.flac"), *args]) == 1
    assert "no file matches this pattern" in capsys.readouterr().err
    assert main([str(top / "day2" / "..")[:-3] + "/day2x", *args]) == 1  # a plain missing path
    assert "no such file" in capsys.readouterr().err
    empty = tmp_path / "nested"
    (empty / "deeper").mkdir(parents=True)
    (empty / "deeper" / "c.wav").write_bytes(good_files[0].read_bytes())
    assert main([str(empty), *args]) == 1
    assert "is a folder with no audio files (1 in its sub-folders: add --recursive)" in capsys.readouterr().err


def test_exit_status_when_nothing_can_start(random_onnx, good_files, capsys):
    assert main([str(good_files[0]), "--model", str(random_onnx / "missing")]) == EXIT_CANNOT_START
    assert "cannot load the model" in capsys.readouterr().err
    assert main([str(good_files[0]), "--model", str(random_onnx), "--mode", "attention"]) == EXIT_CANNOT_START
    assert "OnnxRuntimeBackend lacks" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main([str(good_files[0]), "--model", str(random_onnx), "--vad", "webrtc"])
    assert stop.value.code == EXIT_CANNOT_START


def decode_texts(model: Path, backend: str, manifest: Path, out: Path, mode: str) -> dict[str, str]:
    """``python -m asr.decode`` in this process: utterance id -> hypothesis."""
    overrides = [f"model={model}", f"backend={backend}", "om_runtime=onnxruntime", f"manifest={manifest}",
                 f"out_dir={out}", f"modes=[{mode}]", "progress=false", "threads=1"]
    with initialize_config_dir(config_dir=str(ROOT / "conf" / "decoding"), version_base="1.3"):
        decode_run(compose(config_name="decode", overrides=overrides))
    lines = (out / mode / "text").read_text(encoding="utf-8").splitlines()
    return {line.split(" ")[0]: line.partition(" ")[2] for line in lines}


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "om"])
def test_same_text_as_asr_decode_on_every_backend_mono_and_stereo(backend, random_model_file, random_onnx,
                                                                  random_static_default, prepared_synthetic,
                                                                  test_utterances, tmp_path, capsys):
    model = {"torch": random_model_file, "onnxruntime": random_onnx, "om": random_static_default}[backend]
    (a, sr), (b, _) = test_utterances[2], test_utterances[3]
    n = max(len(a), len(b))
    stereo = np.stack([np.pad(a, (0, n - len(a))), np.pad(b, (0, n - len(b)))], axis=1)  # different channels
    files = {"mono": tmp_path / "mono.wav", "stereo": tmp_path / "stereo.wav"}
    sf.write(files["mono"], a, sr, subtype="PCM_16")
    sf.write(files["stereo"], stereo, sr, subtype="PCM_16")
    rows = [{"id": key, "audio": str(path), "duration": sf.info(path).duration, "text": "今天"}
            for key, path in files.items()]
    write_jsonl(tmp_path / "manifest.jsonl", rows)
    mode = "attention_rescoring"

    decoded = decode_texts(model, backend, tmp_path / "manifest.jsonl", tmp_path / "decode", mode)
    capsys.readouterr()
    status = main([*map(str, files.values()), "--model", str(model), "--backend", backend, "--om-runtime",
                   "onnxruntime", "--mode", mode, "--threads", "1"])
    assert status == 0
    transcribed = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    for key, path in files.items():
        assert decoded[key] and normalize_text(transcribed[str(path)]) == decoded[key], (backend, key)
    mixed = tmp_path / "mixed.wav"  # the stereo file mixed down by hand gives the same text
    as_read, _ = sf.read(files["stereo"], dtype="float32")
    sf.write(mixed, as_read.mean(axis=1, dtype=np.float32), sr, subtype="FLOAT")
    main([str(mixed), "--model", str(model), "--backend", backend, "--om-runtime", "onnxruntime", "--mode", mode,
          "--threads", "1"])
    assert capsys.readouterr().out.split("\t")[1].strip() == transcribed[str(files["stereo"])]
