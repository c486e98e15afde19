"""The ablation benchmark's test conditions (tools/make_test_conditions.py) hold what their names say, checked
against the training manifest and the written audio, not against the tool's own bookkeeping."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import soundfile as sf

import make_test_conditions as mtc
from asr.data.manifest import Manifest
from asr.utils.io import read_jsonl

RARE_BELOW = 3
SNRS = [0.0, 5.0, 10.0]  # and inf: reverberation only


@pytest.fixture(scope="module")
def conditions(prepared_synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("conditions")
    assert mtc.main(["--data", str(prepared_synthetic), "--out", str(out), "--size", "4", "--rare-below",
                     str(RARE_BELOW), "--rare-pool", "1000", "--noise-seconds", "2", "--rooms", "2", "--speakers", "2",
                     "--keep-speech", "--snr", *map(str, SNRS), "inf"]) == 0
    return out


def rows(conditions, name: str) -> list[dict]:
    found = list(read_jsonl(conditions / f"{name}.jsonl"))
    assert found, name
    return found


def train_rows(prepared_synthetic) -> list[dict]:
    return list(Manifest(prepared_synthetic / "train.jsonl"))


def audio(conditions, row: dict) -> np.ndarray:
    x, sr = sf.read(conditions / row["audio"], dtype="float64")
    assert sr == 16000 and x.ndim == 1
    assert len(x) / sr == pytest.approx(row["duration"], abs=1e-3)
    return x


def test_every_condition_is_a_manifest_the_loader_reads(conditions):
    for name in mtc.CONDITIONS:
        manifest = Manifest(conditions / f"{name}.jsonl")
        assert len(manifest) >= 1, name
        for row in manifest:  # the loader resolves the relative paths against the manifest's folder
            assert row["text"] and row["speaker"]
            x, sr = sf.read(row["audio"])
            assert sr == 16000 and len(x) / sr == pytest.approx(row["duration"], abs=1e-3)


def test_long_utterances_are_two_to_three_times_the_longest_training_one(conditions, prepared_synthetic):
    longest = max(row["duration"] for row in train_rows(prepared_synthetic))
    for row in rows(conditions, "test_long"):
        seconds = len(audio(conditions, row)) / 16000
        assert seconds > 2 * longest, row["id"]
        assert seconds <= 3 * longest + 0.4 * (len(row["sources"]) + 1), row["id"]  # pauses: 0.1-0.4 s, 0.1 planned
        assert len(row["sources"]) >= 2 and row["speaker"] and "+" not in row["speaker"]


def test_rare_characters_are_seen_fewer_than_n_times_in_training(conditions, prepared_synthetic):
    counts = Counter(c for row in train_rows(prepared_synthetic) for c in row["text"].replace(" ", ""))
    for row in rows(conditions, "test_rare"):
        assert row["focus_chars"], row["id"]
        assert all(1 <= counts[c] < RARE_BELOW for c in row["focus_chars"]), row
        # every character of the sentence that is rare is listed, and the sentence has no unseen character
        assert set(row["focus_chars"]) == {c for c in row["text"] if counts[c] < RARE_BELOW}
        assert all(counts[c] >= 1 for c in row["text"])


def test_noisy_snr_measured_from_the_mixture_matches_the_request(conditions):
    found = [r for r in rows(conditions, "test_noisy") if r["snr_db"] is not None]
    assert sorted({r["snr_db"] for r in found}) == SNRS
    for row in found:
        mixture = audio(conditions, row)
        speech, _ = sf.read(conditions / row["audio"].replace(".wav", ".speech.wav"), dtype="float64")
        measured = 10 * np.log10(np.sum(speech**2) / np.sum((mixture - speech) ** 2))
        assert measured == pytest.approx(row["snr_db"], abs=0.5), row["id"]


def test_noisy_reverberation_only_rows_are_the_reverberant_speech_without_noise(conditions):
    (row,) = [r for r in rows(conditions, "test_noisy") if r["snr_db"] is None]
    assert row["noise"] is None and row["rir"] and row["id"].endswith("-reverb")
    speech, _ = sf.read(conditions / row["audio"].replace(".wav", ".speech.wav"), dtype="float64")
    np.testing.assert_array_equal(audio(conditions, row), speech)


def test_noisy_noise_and_rooms_are_not_the_training_ones(conditions, synthetic_corpus):
    for held_out, training in (("noise_test", "noise"), ("rirs_test", "rirs")):
        train_clips = [sf.read(p, always_2d=True)[0][:, 0] for p in sorted((synthetic_corpus / training).glob("*.wav"))]
        for path in sorted((conditions / held_out).glob("*.wav")):
            x = sf.read(path, always_2d=True)[0][:, 0]
            for y in train_clips:
                n = min(len(x), len(y))
                assert not np.allclose(x[:n], y[:n], atol=1e-3), (path.name, training)
    assert {r["noise"] for r in rows(conditions, "test_noisy")} - {None} <= {p.name for p in (conditions / "noise_test").glob("*.wav")}


def test_multispeaker_utterances_hold_two_test_speakers(conditions, prepared_synthetic):
    test = {row["id"]: row for row in Manifest(prepared_synthetic / "test.jsonl")}
    for row in rows(conditions, "test_multispk"):
        a, b = row["speakers"]
        assert a != b and [test[s]["speaker"] for s in row["sources"]] == [a, b]
        assert row["text"] == "".join(test[s]["text"] for s in row["sources"])


def test_eSpeak_conditions_are_read_by_unseen_speakers_in_the_training_vocabulary(conditions, prepared_synthetic):
    heard = {row["speaker"] for split in ("train", "dev", "test") for row in Manifest(prepared_synthetic / f"{split}.jsonl")}
    train = train_rows(prepared_synthetic)
    vocabulary, sentences = {c for row in train for c in row["text"]}, {row["text"] for row in train}
    for name in mtc.ESPEAK_CONDITIONS:
        for row in rows(conditions, name):
            assert row["speaker"] not in heard
            assert set(row["text"]) <= vocabulary and row["text"] not in sentences
            assert row["text"] == row["words"].replace(" ", "")


@pytest.mark.parametrize("snr", [-5.0, 0.0, 20.0])
def test_mix_at_snr_keeps_the_ratio_when_it_scales_down(snr):
    rng = np.random.default_rng(0)
    speech, noise = 0.9 * np.sin(np.arange(16000) / 7.0), rng.standard_normal(16000)
    mixture, scaled = mtc.mix_at_snr(speech, noise, snr)
    assert np.abs(mixture).max() <= mtc.PEAK + 1e-6
    measured = 10 * np.log10(np.sum(scaled.astype(np.float64) ** 2) / np.sum((mixture - scaled).astype(np.float64) ** 2))
    assert measured == pytest.approx(snr, abs=0.01)
