"""The synthetic AISHELL-1 corpus (tools/make_synthetic_aishell.py, --small preset; `synthetic_corpus` fixture)."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from pypinyin import Style, lazy_pinyin

import make_synthetic_aishell
from synth.espeak import engine
from synth.noise import coloured_noise, simulate_rir
from synth.speakers import SAMPLE_RATE
from synth.textgen import number_words

WAV = re.compile(r"data_aishell/wav/(train|dev|test)/(S\d{4})/BAC009(S\d{4})W\d{4}\.wav")
TRANSCRIPT = "data_aishell/transcript/aishell_transcript_v0.8.txt"


def transcript(corpus: Path) -> dict[str, list[str]]:
    lines = (corpus / TRANSCRIPT).read_text(encoding="utf-8").splitlines()
    return {line.split(" ", 1)[0]: line.split(" ")[1:] for line in lines}


def wavs(corpus: Path) -> list[Path]:
    return sorted((corpus / "data_aishell" / "wav").rglob("*.wav"))


def syllables(words: list[str]) -> list[tuple[str, str]]:
    """(character, tone-numbered syllable) pairs, read word by word by pypinyin."""
    return [pair for w in words for pair in zip(w, lazy_pinyin(w, style=Style.TONE3, neutral_tone_with_five=True))]


def generate(out: Path, *args: str) -> Path:
    threads = torch.get_num_threads()  # the script pins torch to one thread; keep this test process as it was
    try:
        make_synthetic_aishell.main(["--out", str(out), "--small", "--jobs", "1", *args])
    finally:
        torch.set_num_threads(threads)
    return out


def test_layout_is_aishell(synthetic_corpus):
    stats = json.loads((synthetic_corpus / "stats.json").read_text())
    per_split = defaultdict(int)
    for path in wavs(synthetic_corpus):
        m = WAV.fullmatch(path.relative_to(synthetic_corpus).as_posix())
        assert m, path
        assert m.group(2) == m.group(3), f"{path}: the id names another speaker than its folder"
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), path
        per_split[m.group(1)] += 1
    assert dict(per_split) == {s: v["utterances"] for s, v in stats["splits"].items()}


def test_transcript_matches_wavs_one_to_one(synthetic_corpus):
    lines = (synthetic_corpus / TRANSCRIPT).read_text(encoding="utf-8").splitlines()
    ids = [line.split(" ", 1)[0] for line in lines]
    assert ids == sorted(set(ids))
    assert set(ids) == {p.stem for p in wavs(synthetic_corpus)}
    for words in transcript(synthetic_corpus).values():
        assert words and all(re.fullmatch(r"[\u4e00-\u9fff]+", w) for w in words)


def test_speakers_disjoint_and_numbered_as_aishell(synthetic_corpus):
    wav = synthetic_corpus / "data_aishell" / "wav"
    speakers = {s: {p.name for p in (wav / s).iterdir()} for s in ("train", "dev", "test")}
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"]
    for split, (first, last) in make_synthetic_aishell.SPEAKER_RANGES.items():
        assert all(first <= int(s[1:]) <= last for s in speakers[split]), split


def test_same_seed_same_bytes_whatever_the_jobs(synthetic_corpus, tmp_path):
    again = generate(tmp_path / "again")  # the fixture ran with --jobs 2, this with --jobs 1
    files = sorted(p.relative_to(synthetic_corpus) for p in synthetic_corpus.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (synthetic_corpus / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_other_seed_other_corpus(synthetic_corpus, tmp_path):
    other = generate(tmp_path / "other", "--seed", "1")
    assert list(transcript(other).values()) != list(transcript(synthetic_corpus).values())
    assert all(a.read_bytes() != b.read_bytes() for a, b in zip(wavs(synthetic_corpus), wavs(other)))


def test_every_syllable_has_one_character(synthetic_corpus):
    lines = list(transcript(synthetic_corpus).values())
    lm = (synthetic_corpus / "lm_text" / "train.txt").read_text(encoding="utf-8")
    lines += [line.split() for line in lm.splitlines()]
    chars_of, syllables_of = defaultdict(set), defaultdict(set)
    for words in lines:
        for char, syl in syllables(words):
            chars_of[syl].add(char)
            syllables_of[char].add(syl)
    assert {c: s for c, s in syllables_of.items() if len(s) > 1} == {}
    assert {s: c for s, c in chars_of.items() if len(c) > 1} == {}
    assert json.loads((synthetic_corpus / "stats.json").read_text())["homophone_rate"] == 0.0


def test_espeak_reads_every_transcript_as_mandarin(synthetic_corpus):
    for uid, words in transcript(synthetic_corpus).items():
        pinyin = " ".join(syl for _, syl in syllables(words))
        phonemes = engine().phonemes(pinyin)
        assert "(" not in phonemes, f"{uid}: eSpeak switched language on {pinyin!r}: {phonemes}"
        assert len(re.findall(r"\d+", phonemes)) == sum(map(len, words)), f"{uid}: {pinyin!r} -> {phonemes}"


def test_lm_text_holds_out_dev_and_test(synthetic_corpus):
    stats = json.loads((synthetic_corpus / "stats.json").read_text())
    lm = (synthetic_corpus / "lm_text" / "train.txt").read_text(encoding="utf-8").splitlines()
    assert len(lm) == stats["lm_sentences"]
    dev_test = {p.stem for s in ("dev", "test") for p in (synthetic_corpus / "data_aishell" / "wav" / s).rglob("*.wav")}
    held_out = {"".join(words) for uid, words in transcript(synthetic_corpus).items() if uid in dev_test}
    assert held_out and not held_out & {line.replace(" ", "") for line in lm}


def test_duration_grows_with_syllables(synthetic_corpus):
    texts = transcript(synthetic_corpus)
    n_syllables = np.array([sum(map(len, texts[p.stem])) for p in wavs(synthetic_corpus)])
    seconds = np.array([sf.info(str(p)).duration for p in wavs(synthetic_corpus)])
    slope, _ = np.polyfit(n_syllables, seconds, 1)
    assert np.corrcoef(n_syllables, seconds)[0, 1] > 0.7
    assert 0.1 < slope < 0.5  # seconds per syllable: 2 to 10 syllables a second, the range of human speech
    stats = json.loads((synthetic_corpus / "stats.json").read_text())
    assert sum(v["hours"] for v in stats["splits"].values()) == pytest.approx(seconds.sum() / 3600, abs=1e-3)


def test_noise_and_rir_lists_point_at_16k_files(synthetic_corpus):
    channels = []
    for folder, listing in (("noise", "noise.list"), ("rirs", "rir.list")):
        lines = (synthetic_corpus / folder / listing).read_text().split()
        assert sorted(lines) == sorted(p.name for p in (synthetic_corpus / folder).glob("*.wav"))
        for line in lines:
            info = sf.info(str(synthetic_corpus / folder / line))
            assert info.samplerate == SAMPLE_RATE, line
            channels.append((folder, info.channels))
    kinds = {line.split("_")[0] for line in (synthetic_corpus / "noise" / "noise.list").read_text().split()}
    assert kinds == {"white", "pink", "brown", "babble", "music"}
    assert ("rirs", 2) in channels and ("rirs", 1) in channels and ("noise", 2) not in channels


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_coloured_noise_slope_matches_exponent(exponent):
    x = coloured_noise(2**16, exponent, np.random.default_rng(0))
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    power = np.abs(np.fft.rfft(x)) ** 2
    band = (freqs > 50) & (freqs < 5000)
    slope = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.1)


@pytest.mark.parametrize("rt60", [0.3, 0.7])
def test_rir_decay_matches_rt60(rt60):
    rir = simulate_rir(rt60, np.random.default_rng(1), channels=2)  # (T, 2)
    for c in range(2):
        h = rir[np.argmax(np.abs(rir[:, c])):, c].astype(np.float64)
        edc = 10 * np.log10(np.cumsum(h[::-1] ** 2)[::-1] / np.sum(h**2))  # Schroeder decay curve, dB
        t5, t25 = np.argmax(edc < -5), np.argmax(edc < -25)
        assert 3 * (t25 - t5) / SAMPLE_RATE == pytest.approx(rt60, rel=0.15)  # T20 extrapolated to 60 dB


def parse_chinese_number(words: list[str]) -> int:
    """Independent reading of a Chinese numeral, for the round trip below."""
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"两": 2}
    units = {"十": 10, "百": 100, "千": 1000}
    total, section, digit = 0, 0, 0
    for w in words:
        if w in digits:
            digit = digits[w]
        elif w in units:
            section += (digit or 1) * units[w]
            digit = 0
        else:  # 万
            total, section, digit = (section + digit) * 10000, 0, 0
    return total + section + digit


@pytest.mark.parametrize("n", [1, 2, 10, 11, 20, 101, 110, 220, 1001, 2020, 9999, 10000, 10010, 20500, 123456,
                               99999999])
def test_number_words_round_trip(n):
    assert parse_chinese_number(number_words(n)) == n


def test_a_second_corpus_has_another_vocabulary_and_only_the_voices_asked_for(synthetic_corpus, tmp_path):
    from synth.textgen import build_lexicon

    daily = generate(tmp_path / "daily", "--domain", "daily", "--voices", "f2", "m4", "--seed", "3")
    stats = json.loads((daily / "stats.json").read_text())
    assert stats["domain"] == "daily" and stats["voices"] == ["f2", "m4"] and stats["homophone_rate"] == 0.0
    chars = {c for words in transcript(daily).values() for w in words for c in w}
    assert chars <= set(build_lexicon(engine().unspeakable, "daily").char_syllable)
    news = {c for words in transcript(synthetic_corpus).values() for w in words for c in w}
    assert len(chars - set(build_lexicon(engine().unspeakable).char_syllable)) > len(chars) / 3  # another vocabulary
    assert not {"".join(w) for w in transcript(daily).values()} & {"".join(w) for w in transcript(synthetic_corpus).values()}
    assert news - chars  # and the news words are not there


def test_speakers_draw_from_the_voices_given_and_all_voices_is_the_default():
    counts = [4, 2, 2]
    every = make_synthetic_aishell.make_speakers(counts, 0, engine().variants())
    assert make_synthetic_aishell.make_speakers(counts, 0) == every  # the default corpus is unchanged
    some = make_synthetic_aishell.make_speakers(counts, 0, ["f1", "m8"])
    assert {s.variant for split in some.values() for s in split} <= {"f1", "m8"}


def test_random_text_share_replaces_that_share_of_training_sentences_and_leaves_dev_and_test_alone():
    from synth.textgen import NewsGenerator, build_lexicon, lexicon_words

    lexicon = build_lexicon(engine().unspeakable)
    speakers = make_synthetic_aishell.make_speakers([20, 5, 5], seed=0)
    counts = {"train": 2000, "dev": 100, "test": 100}

    def make(share: float) -> list:
        return make_synthetic_aishell.make_utterances(speakers, counts, NewsGenerator(lexicon, 3), share, 4)

    plain, default, mixed = make(0.0), make_synthetic_aishell.make_utterances(
        speakers, counts, NewsGenerator(lexicon, 3)), make(0.3)
    assert [u.words for u in plain] == [u.words for u in default]
    for a, b in zip(plain, mixed):
        assert a.id == b.id and (a.split == "train" or a.words == b.words)
    grammar = {"".join(u.words) for u in plain}
    replaced = [b for a, b in zip(plain, mixed) if a.words != b.words]
    assert all(u.split == "train" and "".join(u.words) not in grammar for u in replaced)
    assert abs(len(replaced) / counts["train"] - 0.3) < 0.04  # 4 standard deviations at 2,000 draws
    vocabulary = set(lexicon_words(lexicon))
    assert all(set(u.words) <= vocabulary and 6 <= len("".join(u.words)) <= 20 for u in replaced)
    assert len({"".join(u.words) for u in mixed}) == len(mixed)  # still every sentence distinct
