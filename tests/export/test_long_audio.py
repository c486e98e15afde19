"""Long audio: VAD segments decoded in batches equal one-by-one decoding; asr-transcribe reports bad files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from asr.export.format import read_file_metadata
from asr.inference.cli import main, open_recognizer
from asr.inference.long_audio import AudioFile, join_texts, transcribe_file
from asr.inference.vad import EnergyVAD
from tests.export.conftest import join_with_silences

MODE = "ctc_greedy_search"


@pytest.fixture(scope="module")
def recognizer(random_onnx):
    return open_recognizer(str(random_onnx), threads=1)


@pytest.fixture(scope="module")
def joined(test_utterances, tmp_path_factory):
    """Six test utterances joined by pauses, as a wav, with the spans of their speech."""
    utterances = [x for x, _ in test_utterances[:6]]
    signal, spans = join_with_silences(utterances, list(np.random.default_rng(3).uniform(0.4, 1.0, 7)))
    path = tmp_path_factory.mktemp("long") / "joined.wav"
    sf.write(path, signal, 16000, subtype="PCM_16")
    return path, spans


def test_batched_segments_equal_one_by_one_decoding(recognizer, joined):
    path, spans = joined
    audio = AudioFile(path)
    transcript = transcribe_file(recognizer, audio, EnergyVAD(), MODE, batch_size=4)
    assert len(transcript.segments) == len(spans) and transcript.notes == []
    for segment, (speech_start, speech_end) in zip(transcript.segments, spans):
        assert segment.start <= speech_start + 0.01 and speech_end <= segment.end + 0.01
        assert segment.text == recognizer.transcribe([audio.read(segment.start, segment.end)], MODE)[0]
    assert transcript.text == "".join(s.text for s in transcript.segments)


def test_join_texts_spaces_only_between_latin_words():
    assert join_texts(["你好", "世界", "", "ok", "go", "好"]) == "你好世界ok go好"


def test_bad_files_are_reported_and_the_rest_transcribed(random_onnx, joined, tmp_path, capsys):
    good, _ = joined
    signal, _ = sf.read(good, dtype="float32")
    files = {"missing": tmp_path / "missing.wav", "empty": tmp_path / "empty.wav", "silent": tmp_path / "silent.wav",
             "stereo": tmp_path / "stereo.wav", "8k": tmp_path / "8k.wav", "text": tmp_path / "notes.wav"}
    sf.write(files["empty"], np.zeros(0, np.float32), 16000)
    sf.write(files["silent"], np.zeros(32000, np.float32), 16000)
    sf.write(files["stereo"], np.stack([signal, 0.5 * signal], axis=1), 16000)
    sf.write(files["8k"], signal[::2], 8000)
    files["text"].write_text("not audio")
    names = [str(good)] + [str(f) for f in files.values()]

    assert main([*names, "--model", str(random_onnx), "--mode", MODE, "--threads", "1"]) == 1
    out, err = capsys.readouterr()
    printed = dict(line.split("\t") for line in out.splitlines())
    assert set(printed) == {str(good), str(files["silent"]), str(files["stereo"]), str(files["8k"])}
    assert printed[str(good)] and printed[str(files["silent"])] == ""
    for key, message in [("missing", "no such file"), ("empty", "empty audio"), ("silent", "no speech found"),
                         ("stereo", "2 channels mixed down"), ("8k", "resampled 8000 Hz -> 16000 Hz"),
                         ("text", "cannot read audio")]:
        assert any(str(files[key]) in line and message in line for line in err.splitlines()), (key, err)

    assert main([str(files["8k"]), "--model", str(random_onnx), "--no-resample", "--threads", "1"]) == 1
    assert "resampling is off" in capsys.readouterr().err
    assert main([str(good), "--model", str(random_onnx / "missing")]) == 2
    assert "cannot load the model" in capsys.readouterr().err
    assert main([str(good), "--model", str(random_onnx), "--mode", "attention", "--threads", "1"]) == 2
    assert "OnnxRuntimeBackend lacks" in capsys.readouterr().err


def test_om_backend_gets_segments_its_profile_holds(random_static, joined, capsys):
    path, _ = joined
    args = [str(path), "--model", str(random_static), "--backend", "om", "--om-runtime", "onnxruntime", "--json"]
    assert main([*args, "--threads", "1"]) == 0  # attention rescoring: the decoder must hold every segment
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    frames = read_file_metadata(random_static / "encoder.onnx")["profile"]["frames"]
    assert len(rows) > 6 and all(r["end"] - r["start"] <= (frames - 1) * 0.01 + 0.025 for r in rows)


def test_two_minute_file_as_json_lines(random_onnx, test_utterances, tmp_path, capsys):
    utterances = [x for x, _ in test_utterances] * 3
    gaps = list(np.random.default_rng(4).uniform(0.5, 1.5, len(utterances) + 1))
    signal, spans = join_with_silences(utterances, gaps)
    assert len(signal) / 16000 >= 120
    path = tmp_path / "two_minutes.flac"
    sf.write(path, signal, 16000)
    assert main([str(path), "--model", str(random_onnx), "--json", "--mode", MODE, "--threads", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(spans)
    for row, (speech_start, speech_end) in zip(rows, spans):
        assert row["file"] == str(path) and row["text"]
        assert row["start"] <= speech_start + 0.01 and speech_end <= row["end"] + 0.01
    assert all(a["end"] <= b["start"] for a, b in zip(rows, rows[1:]))
