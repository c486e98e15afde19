"""Preparation of AISHELL-shaped corpora: manifests, durations, and every bad input listed."""
import json

import numpy as np
import soundfile as sf

from conftest import make_tone_corpus, prepare, write_tone
from asr.utils.io import read_jsonl


def rejected(out):
    lines = (out / "rejected.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {line.split("\t")[1]: line.split("\t")[3] for line in lines}


def test_synthetic_corpus_manifests_have_true_durations(prepared_synthetic, synthetic_corpus):
    transcript = (synthetic_corpus / "data_aishell/transcript/aishell_transcript_v0.8.txt").read_text(encoding="utf-8")
    n_lines = len(transcript.strip().splitlines())
    rows = [r for split in ("train", "dev", "test") for r in read_jsonl(prepared_synthetic / f"{split}.jsonl")]
    assert len(rows) == n_lines and not rejected(prepared_synthetic)
    for row in rows:
        info = sf.info(row["audio"])
        assert abs(row["duration"] - info.frames / info.samplerate) < 1e-3
        assert row["speaker"] in row["id"] and " " not in row["text"]


def test_each_bad_input_is_listed_with_its_reason(tmp_path):
    corpus = make_tone_corpus(tmp_path / "c")
    wav = corpus / "data_aishell/wav/train/S0002"
    (wav / "BAC009S0002W0001.wav").write_bytes(b"not a wav at all")                 # unreadable
    sf.write(wav / "BAC009S0002W0002.wav", np.zeros(0, np.float32), 16000)          # zero-length
    write_tone(wav / "BAC009S0002W0003.wav", 25.0)                                  # over-long
    write_tone(wav / "BAC009S0002W0009.wav", 1.0)                                   # no transcript
    write_tone(wav / "BAC009S0002W0004.wav", 1.0, sr=8000)                          # wrong rate
    write_tone(wav / "BAC009S0002W0010.wav", 1.0)                                   # empty transcript
    transcript = corpus / "data_aishell/transcript/aishell_transcript_v0.8.txt"
    with open(transcript, "a", encoding="utf-8") as f:
        f.write("BAC009S0002W0099 没有 音频\nBAC009S0002W0010\n")                  # missing audio; empty text
    out = tmp_path / "data"
    r = prepare(corpus, out)
    assert r.returncode == 0, r.stderr
    bad = rejected(out)
    assert "unreadable" in bad["BAC009S0002W0001"]
    assert "too short" in bad["BAC009S0002W0002"]
    assert "too long" in bad["BAC009S0002W0003"]
    assert bad["BAC009S0002W0009"] == "no transcript"
    assert bad["BAC009S0002W0099"] == "transcript line without audio"
    assert "empty transcript" in bad["BAC009S0002W0010"]
    assert f"rejected: {len(bad)}" in r.stdout
    rows = {row["id"]: row for row in read_jsonl(out / "train.jsonl")}
    assert rows["BAC009S0002W0004"]["sample_rate"] == 8000  # kept, resampled when loaded
    # nothing lost: every wav is either in a manifest or in the rejected list
    wavs = {p.stem for p in corpus.glob("data_aishell/wav/*/*/*.wav")}
    kept = {row["id"] for s in ("train", "dev", "test") for row in read_jsonl(out / f"{s}.jsonl")}
    assert wavs == kept | (set(bad) & wavs) and not kept & set(bad)
    r = prepare(corpus, tmp_path / "strict", "--no-resample")
    assert "8000 Hz" in rejected(tmp_path / "strict")["BAC009S0002W0004"]


def test_not_an_aishell_corpus(tmp_path):
    (tmp_path / "x").mkdir()
    r = prepare(tmp_path / "x", tmp_path / "out")
    assert r.returncode != 0 and "not an AISHELL-1 corpus" in r.stderr and "transcript" in r.stderr


def test_manifest_rows_are_read_lazily_by_offset(tmp_path):
    from asr.data.manifest import Manifest
    from asr.utils.io import write_jsonl
    rows = [{"id": f"u{i}", "audio": f"a{i}.wav", "duration": i / 10, "text": "好" * i} for i in range(1, 50)]
    write_jsonl(tmp_path / "m.jsonl", rows)
    m = Manifest(tmp_path / "m.jsonl")
    assert len(m) == 49 and np.allclose(m.durations, [r["duration"] for r in rows])
    assert m[30]["text"] == rows[30]["text"] and m[30]["audio"] == str(tmp_path / "a31.wav")
    (tmp_path / "bad.jsonl").write_text(json.dumps(rows[0]) + "\n{oops\n")
    try:
        Manifest(tmp_path / "bad.jsonl")
    except ValueError as e:
        assert "bad.jsonl:2" in str(e)
    else:
        raise AssertionError("a bad line must raise")
