"""Write a synthetic Mandarin corpus in AISHELL-1's exact layout, with LM text, a noise set and an RIR set.

    python tools/make_synthetic_aishell.py --out corpus/synthetic [--small] [--seed 0] [--jobs 2]
    python tools/make_synthetic_aishell.py --out corpus/daily --domain daily --voices f3 f4 f5 m5 m6 m7 m8 --seed 7
                                                      # a second, differently built corpus (text, vocabulary, voices)

Speech is eSpeak NG reading tone-numbered pinyin of news-like sentences (--domain daily: everyday ones, another
vocabulary) whose characters are homophone-free (see tools/synth/textgen.py), so the text is recoverable from the
sound. Writes, under OUT:

    data_aishell/wav/{train,dev,test}/S0002/BAC009S0002W0121.wav   16 kHz mono 16-bit, disjoint speakers per split
    data_aishell/transcript/aishell_transcript_v0.8.txt            "BAC009S0002W0121 词 语 分 词", sorted by id
    lm_text/train.txt                                              held-out LM text, no dev/test sentence
    noise/*.wav, noise/noise.list                                  white/pink/brown/babble/music noise
    rirs/*.wav, rirs/rir.list                                      simulated RIRs, one or more with 2 channels
    README.txt, stats.json

Output is a function of the arguments except --jobs: every utterance draws from its own seeded stream.
"""
from __future__ import annotations

import time

_T0 = time.perf_counter()  # the generation time printed at the end includes the imports

import argparse
import contextlib
import json
import multiprocessing
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from asr.utils.io import atomic_path, atomic_write  # noqa: E402
from synth.espeak import engine  # noqa: E402
from synth.noise import NOISE_KINDS, make_noise, simulate_rir  # noqa: E402
from synth.speakers import SAMPLE_RATE, Speaker, sample_speaker, speak  # noqa: E402
from synth.textgen import (Lexicon, NewsGenerator, build_lexicon, homophone_rate, lexicon_words,  # noqa: E402
                           pinyin, random_word_sentence)

SPLITS = ("train", "dev", "test")
# AISHELL-1 numbers its speakers S0002-S0723 (train), S0724-S0763 (dev), S0764-S0916 (test).
SPEAKER_RANGES = {"train": (2, 723), "dev": (724, 763), "test": (764, 916)}
FIRST_UTT_NUMBER = 121  # AISHELL-1 utterance numbers (the W part) start around W0121
PRESETS = {
    # test is drawn last and is large enough (1,000 utterances, 13k characters) to resolve differences of a few
    # tenths of a CER point, e.g. what an LM adds after attention rescoring (recipes/aishell/RESULTS.md)
    "default": dict(train_utts=6000, dev_utts=150, test_utts=1000, speakers=[200, 5, 25], lm_sentences=20000,
                    noise_per_kind=2, noise_seconds=10.0, rirs=8, rirs_2ch=2),
    "small": dict(train_utts=40, dev_utts=10, test_utts=10, speakers=[4, 2, 2], lm_sentences=500,
                  noise_per_kind=1, noise_seconds=3.0, rirs=3, rirs_2ch=1),
}
# Independent random streams: np.random.default_rng([seed, STREAM, ...]).
SPEAKERS, CORPUS_TEXT, LM_TEXT, UTTERANCE, NOISE, RIR, RANDOM_TEXT = range(7)


@dataclass(frozen=True)
class Utterance:
    id: str
    split: str
    speaker: Speaker
    words: tuple[str, ...]
    index: int  # position in the corpus, which names its random stream


def make_speakers(counts: list[int], seed: int, voices: list[str] | None = None) -> dict[str, list[Speaker]]:
    """Speakers per split, numbered from the start of AISHELL-1's range for that split, drawn from the eSpeak
    variants ``voices`` (default: all)."""
    rng = np.random.default_rng([seed, SPEAKERS])
    speakers = {}
    for split, count in zip(SPLITS, counts):
        first, last = SPEAKER_RANGES[split]
        if not 1 <= count <= last - first + 1:
            raise ValueError(f"--speakers: {split} takes 1 to {last - first + 1} speakers "
                             f"(AISHELL-1 numbering), got {count}")
        speakers[split] = [sample_speaker(f"S{first + i:04d}", rng, voices) for i in range(count)]
    return speakers


def make_utterances(speakers: dict[str, list[Speaker]], counts: dict[str, int],
                    texts: NewsGenerator, random_share: float = 0.0, random_seed: int = 0) -> list[Utterance]:
    """Spread each split's utterances evenly over its speakers; every sentence in the corpus is distinct.

    ``random_share`` of the training sentences (drawn with their own stream, ``random_seed``) are replaced by
    uniformly drawn word sequences (:func:`synth.textgen.random_word_sentence`): text without the grammar's
    templates, so that a model cannot recognise whole memorised sentences and has to hear each word. The grammar's
    sentences are drawn all the same, so dev and test do not change with the share.
    """
    mix = np.random.default_rng(random_seed)
    words_of_lexicon = lexicon_words(texts.lexicon) if random_share > 0 else []
    seen, utts = set(), []
    for split in SPLITS:
        spk = speakers[split]
        if counts[split] < len(spk):
            raise ValueError(f"{split}: {counts[split]} utterances cannot cover {len(spk)} speakers")
        for k in range(counts[split]):
            speaker = spk[k % len(spk)]
            words = texts.sentence()
            while "".join(words) in seen:
                words = texts.sentence()
            seen.add("".join(words))
            if split == "train" and random_share > 0 and mix.random() < random_share:
                words = random_word_sentence(words_of_lexicon, mix)
                while "".join(words) in seen:
                    words = random_word_sentence(words_of_lexicon, mix)
                seen.add("".join(words))
            uid = f"BAC009{speaker.id}W{FIRST_UTT_NUMBER + k // len(spk):04d}"
            utts.append(Utterance(uid, split, speaker, tuple(words), len(utts)))
    return utts


def write_wav(path: Path, audio: np.ndarray) -> None:
    """16-bit PCM at the corpus rate, written to a temporary name and renamed."""
    with atomic_path(path) as tmp:
        sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16")


def synth_speaker(work: list[tuple[Utterance, Path, int]]) -> list[float]:
    """Write one speaker's wavs (16-bit PCM), in order, from a freshly loaded eSpeak; return their durations (s).

    A fresh load per speaker makes the audio independent of which process synthesises which speaker.
    """
    engine().reset()
    seconds = []
    for utt, path, seed in work:
        rng = np.random.default_rng([seed, UTTERANCE, utt.index])
        syllables = " ".join(s for word in pinyin(list(utt.words)) for s in word)
        audio = speak(syllables, utt.speaker, rng)
        write_wav(path, audio)
        seconds.append(len(audio) / SAMPLE_RATE)
    return seconds


def write_audio(utts: list[Utterance], wav_root: Path, seed: int, jobs: int) -> dict[str, float]:
    """Synthesise all utterances, one speaker per task on ``jobs`` processes; return {utterance id: seconds}."""
    shards: dict[str, list] = {}
    for utt in utts:
        path = wav_root / utt.split / utt.speaker.id / f"{utt.id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        shards.setdefault(utt.speaker.id, []).append((utt, path, seed))
    pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else None
    with pool or contextlib.nullcontext():
        done = pool.imap(synth_speaker, shards.values()) if pool else map(synth_speaker, shards.values())
        durations = [d for shard in tqdm(done, total=len(shards), desc="synthesising", unit="speaker") for d in shard]
    return {utt.id: d for utt, d in zip((u for shard in shards.values() for u, _, _ in shard), durations)}


def write_lm_text(path: Path, texts: NewsGenerator, n: int, held_out: set[str]) -> None:
    """``n`` generated sentences, none of which equals a held-out (dev/test) sentence."""
    with atomic_write(path) as f:
        written = 0
        while written < n:
            words = texts.sentence()
            if "".join(words) not in held_out:
                f.write(" ".join(words) + "\n")
                written += 1


def write_noise(folder: Path, per_kind: int, seconds: float, seed: int, lexicon: Lexicon,
                stream: tuple[int, ...] = ()) -> list[str]:
    """Noise clips of every kind plus ``noise.list``; babble is speech of random voices and sentences.

    ``stream`` names another random stream than the corpus's (held-out noise for a test condition).
    """
    engine().reset()
    rng = np.random.default_rng([seed, NOISE, *stream])
    texts = NewsGenerator(lexicon, np.random.default_rng([seed, NOISE, *stream, 1]).integers(2**32))

    def talk(r: np.random.Generator) -> np.ndarray:
        syllables = " ".join(s for word in pinyin(texts.sentence()) for s in word)
        return speak(syllables, sample_speaker("babble", r), r, pad=(0.0, 0.2))

    names = []
    for kind in NOISE_KINDS:
        for i in range(per_kind):
            name = f"{kind}_{i + 1:02d}.wav"
            write_wav(folder / name, make_noise(kind, seconds, rng, talk))
            names.append(name)
    with atomic_write(folder / "noise.list") as f:
        f.writelines(n + "\n" for n in names)
    return names


def write_rirs(folder: Path, mono: int, two_channel: int, seed: int, stream: tuple[int, ...] = ()) -> list[str]:
    """Simulated RIRs (RT60 drawn from 0.2-0.8 s) plus ``rir.list``; ``stream`` as in :func:`write_noise`."""
    rng = np.random.default_rng([seed, RIR, *stream])
    names = []
    for channels, count in ((1, mono), (2, two_channel)):
        for i in range(count):
            name = f"rir_{'2ch_' if channels == 2 else ''}{i + 1:02d}.wav"
            rir = simulate_rir(rng.uniform(0.2, 0.8), rng, channels)  # (T, C)
            write_wav(folder / name, rir[:, 0] if channels == 1 else rir)
            names.append(name)
    with atomic_write(folder / "rir.list") as f:
        f.writelines(n + "\n" for n in names)
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="corpus folder to write (data_aishell/ goes inside)")
    p.add_argument("--small", action="store_true", help="tiny preset for tests: "
                   + ", ".join(f"{k}={v}" for k, v in PRESETS["small"].items()))
    p.add_argument("--train-utts", type=int)
    p.add_argument("--dev-utts", type=int)
    p.add_argument("--test-utts", type=int)
    p.add_argument("--speakers", type=int, nargs=3, metavar=("TRAIN", "DEV", "TEST"))
    p.add_argument("--lm-sentences", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--domain", default="news", help="text domain: news (the demo corpus) or daily (everyday speech:"
                   " other sentence shapes, vocabulary and word classes; tools/synth/lexicon.py)")
    p.add_argument("--random-text-share", type=float, default=0.0,
                   help="share of training sentences replaced by random word sequences of the lexicon (dev and test "
                        "unchanged; the LM text keeps the grammar)")
    p.add_argument("--voices", nargs="+", metavar="VARIANT",
                   help="eSpeak voice variants the speakers are drawn from (default: all, f1-f5 m1-m8)")
    p.add_argument("--jobs", type=int, default=2, help="synthesis processes")
    p.add_argument("--overwrite", action="store_true", help="replace a corpus already in --out")
    args = p.parse_args(argv)
    for key, value in PRESETS["small" if args.small else "default"].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # one thread per process, and float results that do not depend on the thread count
    out, root = args.out, args.out / "data_aishell"
    outputs = [root, out / "lm_text", out / "noise", out / "rirs", out / "stats.json", out / "README.txt"]
    if any(p.exists() for p in outputs):
        if not args.overwrite:
            raise ValueError(f"{out} already holds a corpus; pass --overwrite to replace it")
        for p in outputs:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)

    if args.voices and (unknown := sorted(set(args.voices) - set(engine().variants()))):
        raise ValueError(f"--voices: unknown eSpeak variants {unknown}; available: {engine().variants()}")
    lexicon = build_lexicon(engine().unspeakable, args.domain)
    rate = homophone_rate(lexicon.char_syllable)
    print(f"lexicon: {len(lexicon.char_syllable)} characters, homophone rate {rate:.4f}, "
          f"{len(lexicon.dropped)} phrases dropped for homophones/readings")

    counts = {"train": args.train_utts, "dev": args.dev_utts, "test": args.test_utts}
    speakers = make_speakers(args.speakers, args.seed, args.voices)
    corpus_seed = np.random.default_rng([args.seed, CORPUS_TEXT]).integers(2**32)
    if not 0.0 <= args.random_text_share <= 1.0:
        raise ValueError(f"--random-text-share must be in [0, 1], got {args.random_text_share}")
    random_seed = np.random.default_rng([args.seed, RANDOM_TEXT]).integers(2**32)
    utts = make_utterances(speakers, counts, NewsGenerator(lexicon, corpus_seed), args.random_text_share,
                           random_seed)
    seconds = write_audio(utts, root / "wav", args.seed, args.jobs)

    with atomic_write(root / "transcript" / "aishell_transcript_v0.8.txt") as f:
        f.writelines(f"{u.id} {' '.join(u.words)}\n" for u in sorted(utts, key=lambda u: u.id))
    held_out = {"".join(u.words) for u in utts if u.split != "train"}
    lm_seed = np.random.default_rng([args.seed, LM_TEXT]).integers(2**32)
    write_lm_text(out / "lm_text" / "train.txt", NewsGenerator(lexicon, lm_seed), args.lm_sentences, held_out)
    (out / "noise").mkdir(parents=True, exist_ok=True)
    (out / "rirs").mkdir(parents=True, exist_ok=True)
    noises = write_noise(out / "noise", args.noise_per_kind, args.noise_seconds, args.seed, lexicon)
    rirs = write_rirs(out / "rirs", args.rirs, args.rirs_2ch, args.seed)

    words = {w for u in utts for w in u.words}
    stats = {
        "seed": args.seed,
        "domain": args.domain,
        "voices": args.voices or engine().variants(),
        "sample_rate": SAMPLE_RATE,
        "splits": {s: {"utterances": counts[s], "speakers": len(speakers[s]),
                       "hours": round(sum(seconds[u.id] for u in utts if u.split == s) / 3600, 4)} for s in SPLITS},
        "characters": len(lexicon.char_syllable),
        "words_in_transcripts": len(words),
        "homophone_rate": rate,
        "random_text_share": args.random_text_share,
        "lm_sentences": args.lm_sentences,
        "noise_files": len(noises),
        "rir_files": len(rirs),
    }
    with atomic_write(out / "stats.json") as f:
        json.dump(stats, f, ensure_ascii=False, indent=2)
    with atomic_write(out / "README.txt") as f:
        f.write(readme(args, stats))

    hours = ", ".join(f"{s} {v['hours']:.3f} h / {v['utterances']} utts / {v['speakers']} spk"
                      for s, v in stats["splits"].items())
    print(f"wrote {out}: {hours}; generated in {time.perf_counter() - _T0:.1f} s with {args.jobs} job(s)")


def readme(args: argparse.Namespace, stats: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(vars(args).items()) if k not in ("out", "jobs", "overwrite"))
    splits = "\n".join(f"  {s}: {v['utterances']} utterances, {v['speakers']} speakers, {v['hours']:.3f} hours"
                       for s, v in stats["splits"].items())
    kind = "news-like" if stats["domain"] == "news" else f"{stats['domain']} (text domain)"
    return f"""Synthetic Mandarin corpus in AISHELL-1's layout (NOT real speech).

Made by tools/make_synthetic_aishell.py with {params}.
The same arguments give the same files, byte for byte.

Speech: eSpeak NG (voice cmn-latn-pinyin) reading the tone-numbered pinyin of generated {kind} sentences,
resampled to 16 kHz, 16-bit mono, with 0.1-0.3 s of silence at each end over a faint noise floor. Each speaker is
an eSpeak voice variant with its own pitch, pitch range, rate and volume; train/dev/test speakers are disjoint and
numbered as in AISHELL-1 (train from S0002, dev from S0724, test from S0764).
Text: {stats['characters']} characters, no two sharing a tone-numbered syllable
(homophone rate {stats['homophone_rate']}), so the text is recoverable from the sound.

{splits}

data_aishell/wav/SPLIT/SPEAKER/BAC009SxxxxWxxxx.wav, data_aishell/transcript/aishell_transcript_v0.8.txt
lm_text/train.txt        {stats['lm_sentences']} word-segmented sentences of the same grammar, none a dev/test one
noise/noise.list         {stats['noise_files']} clips: {', '.join(NOISE_KINDS)} (MUSAN-like use)
rirs/rir.list            {stats['rir_files']} simulated room impulse responses, RT60 0.2-0.8 s, some with 2 channels
stats.json               the figures above
"""


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"make_synthetic_aishell: {e}")
