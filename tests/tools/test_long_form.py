"""The long-form set (tools/make_long_form.py) puts each utterance where its boundaries say, its scorer
(tools/score_long_form.py) measures CER and timestamp errors as defined, and tools/add_training_lengths.py gives an
old model file its training lengths."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from safetensors.torch import load_file

import add_training_lengths
import make_long_form
import score_long_form
from asr.data.audio import load_audio
from asr.data.lengths import TrainingLengths
from asr.data.manifest import Manifest
from asr.modelfile import load_model_file, read_meta, save_model_file
from asr.utils.io import read_jsonl, write_jsonl
from tests.export.conftest import write_random_model_file


@pytest.fixture(scope="module")
def long_form(prepared_synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("long_form")
    assert make_long_form.main(["--manifest", str(prepared_synthetic / "test.jsonl"), "--out", str(out),
                                "--minutes", "0.2", "0.3", "--seed", "1"]) == 0
    return out


def test_each_utterance_is_where_its_boundaries_say(long_form, prepared_synthetic):
    originals = {row["id"]: row for row in Manifest(prepared_synthetic / "test.jsonl")}
    recordings = list(read_jsonl(long_form / "long_form.jsonl"))
    assert len(recordings) >= 2
    cuts = {row["id"]: row for row in Manifest(long_form / "utterances.jsonl")}
    for rec in recordings:
        signal, sr = sf.read(long_form / rec["audio"], dtype="float32")
        assert rec["duration"] == pytest.approx(len(signal) / sr, abs=1e-3)
        previous_end = 0.0
        for u in rec["utterances"]:
            assert 0.2 - 1e-3 <= u["start"] - previous_end <= 2.0 + 1e-3  # the pause before it
            speech = make_long_form.trim(load_audio(originals[u["id"]]["audio"]), sr, 40.0)
            placed = signal[round(u["start"] * sr) : round(u["start"] * sr) + len(speech)]
            assert u["end"] == pytest.approx(u["start"] + len(speech) / sr, abs=1e-3)
            np.testing.assert_allclose(placed, speech, atol=2e-3)  # 16-bit PCM and the -70 dBFS floor
            cut = load_audio(cuts[u["id"]]["audio"])
            assert np.abs(np.correlate(cut, speech[:1000])).max() > 0.9 * np.dot(speech[:1000], speech[:1000])
            previous_end = u["end"]
        assert rec["duration"] - previous_end >= 0.2 - 1e-3


def test_noise_runs_under_the_speech(prepared_synthetic, synthetic_corpus, tmp_path):
    out = tmp_path / "noisy"
    make_long_form.main(["--manifest", str(prepared_synthetic / "test.jsonl"), "--out", str(out), "--minutes", "0.2",
                         "0.3", "--noise-list", str(synthetic_corpus / "noise" / "noise.list"), "--snr", "10", "10"])
    rec = next(read_jsonl(out / "long_form.jsonl"))
    signal, sr = sf.read(out / rec["audio"], dtype="float32")
    first = rec["utterances"][0]
    pause = signal[: int(first["start"] * sr)]
    assert np.sqrt(np.mean(pause**2)) > 10 ** (-50 / 20)  # far above the -70 dBFS floor of a clean set


def test_scorer_measures_what_it_is_given(long_form, tmp_path):
    recordings = list(read_jsonl(long_form / "long_form.jsonl"))
    shift = 0.05

    def transcripts(shifted: float, drop_first: bool = False) -> list[dict]:
        rows = []
        for rec in recordings:
            utterances = rec["utterances"][1:] if drop_first else rec["utterances"]
            segments = [{"start": u["start"] + shifted, "end": u["end"] - shifted, "text": u["text"]}
                        for u in utterances]
            rows.append({"file": str(long_form / rec["audio"]), "text": "".join(s["text"] for s in segments),
                         "segments": segments, "error": None})
        return rows

    write_jsonl(tmp_path / "exact.jsonl", transcripts(0.0))
    write_jsonl(tmp_path / "shifted.jsonl", transcripts(shift, drop_first=True))
    (tmp_path / "text").write_text("".join(f"{u['id']} {u['text']}\n" for r in recordings for u in r["utterances"]),
                                   encoding="utf-8")
    score_long_form.main(["--set", str(long_form / "long_form.jsonl"), "--one-by-one", f"x={tmp_path / 'text'}",
                          "--transcripts", f"x/exact={tmp_path / 'exact.jsonl'}",
                          "--transcripts", f"x/shifted={tmp_path / 'shifted.jsonl'}",
                          "--out", str(tmp_path / "s.json")])
    results = json.loads((tmp_path / "s.json").read_text())
    exact, shifted = results["x/exact"], results["x/shifted"]
    assert exact["long_form"]["cer"] == 0 and exact["one_by_one"]["cer"] == 0 and exact["missed"] == 0
    assert exact["start_ms"] == {"median": 0.0, "p90": 0.0} and exact["end_ms"] == {"median": 0.0, "p90": 0.0}
    assert shifted["missed"] == len(recordings)
    assert shifted["start_ms"]["median"] == pytest.approx(1000 * shift) == shifted["end_ms"]["p90"]
    dropped = sum(len(r["utterances"][0]["text"].replace(" ", "")) for r in recordings)
    assert shifted["long_form"]["deletions"] == dropped


def test_an_old_model_file_gets_its_training_lengths(prepared_synthetic, tmp_path):
    new = write_random_model_file(tmp_path / "new.safetensors")
    meta = read_meta(new)
    del meta["training_lengths"]
    old = tmp_path / "old.safetensors"
    save_model_file(old, load_file(new), meta)
    assert load_model_file(old).training_lengths is None
    add_training_lengths.main(["--model", str(old), "--manifest", str(prepared_synthetic / "train.jsonl"),
                               "--out", str(tmp_path / "added.safetensors")])
    added = load_model_file(tmp_path / "added.safetensors")
    assert added.training_lengths == TrainingLengths.from_manifest(prepared_synthetic / "train.jsonl")
    for key, value in load_file(old).items():
        assert (load_file(tmp_path / "added.safetensors")[key] == value).all()
