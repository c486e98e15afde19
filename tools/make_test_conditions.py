"""Make the test conditions of the ablation benchmark, each a manifest of its own, from a prepared corpus.

Usage:
    python tools/make_test_conditions.py --data data/demo --out data/demo/conditions
    python tools/make_test_conditions.py --data data/demo --out data/demo/conditions --size 50 \\
        --conditions test_long test_noisy test_multispk          # real AISHELL-1: no eSpeak conditions

Reads DATA/train.jsonl (the longest utterance, the characters' counts, the sentences) and DATA/test.jsonl (whose
speakers no training run has heard) and writes, under OUT, one manifest per condition (``NAME.jsonl``, audio
under ``NAME/``, paths relative to OUT; every row has id, audio, duration, speaker, text and what the condition
says about it):

    test_long        test utterances of one speaker joined (trimmed to their speech, 0.1-0.4 s pauses) until the
                     recording is 2-3x the longest training utterance (``train_max_seconds`` in conditions.json;
                     the pauses can add a little over 3x).
                     Training with speed perturbation (x1/0.9) or splicing sees longer inputs than that maximum.
    test_rare        new sentences of the corpus grammar rich in characters seen 1 to --rare-below - 1 times in
                     training, chosen to spread over them (``focus_chars``: the decoder scores a CER restricted to
                     them); eSpeak.
    test_noisy       test utterances reverberated with a held-out simulated room, then held-out noise added at
                     an SNR taken in turn from --snr (``snr_db``; speech power = the reverberant utterance's mean
                     power over its whole length, as the training augmentation measures it; an SNR of ``inf`` adds
                     no noise: reverberation only, ``snr_db`` and ``noise`` null); the noise clips and
                     rooms are drawn from random streams the corpus's own noise/ and rirs/ never use, and written
                     to OUT/noise_test and OUT/rirs_test.
    test_multispk    two test utterances of two different speakers, trimmed and joined by a 0.1-0.5 s pause
                     (``speakers``: both ids).
    test_randomtext  word sequences drawn uniformly from the corpus vocabulary (no template), 6-20 characters,
                     only characters seen in training; eSpeak.

The eSpeak conditions (test_rare, test_randomtext) use the synthetic corpus's lexicon (tools/synth) and new
speakers, numbered after the last test speaker of DATA. OUT/conditions.json records the arguments and the facts
each condition was built on. Output is a function of the arguments and DATA: every condition draws from its own
seeded stream.
"""
from __future__ import annotations

import argparse
import heapq
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.augment.reverb import reverberate  # noqa: E402
from asr.data.audio import load_audio  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.data.text import normalize_text  # noqa: E402
from asr.utils.io import atomic_path, atomic_write, write_jsonl  # noqa: E402
from make_long_form import make_recording, trim  # noqa: E402

CONDITIONS = ("test_long", "test_rare", "test_noisy", "test_multispk", "test_randomtext")
ESPEAK_CONDITIONS = ("test_rare", "test_randomtext")
# Random streams: np.random.default_rng([seed, STREAM, ...]); HELD_OUT is the extra stream element that keeps the
# test noise and rooms off the corpus's own (make_synthetic_aishell.write_noise / write_rirs draw [seed, NOISE|RIR]).
LONG, RARE, NOISY, MULTISPK, RANDOMTEXT, SPEAKERS = range(6)
HELD_OUT = 7
LAST_TEST_SPEAKER = 916  # AISHELL-1's test speakers are S0764-S0916
SAMPLE_RATE = 16000
PEAK = 0.95  # a mixture louder than this is scaled down (speech and noise alike, so the SNR stays)


def train_facts(train: Manifest) -> tuple[float, Counter, set[str]]:
    """The longest training utterance (s), every character's count, and the training sentences."""
    counts, sentences = Counter(), set()
    for row in train:
        text = normalize_text(row["text"]).replace(" ", "")
        counts.update(text)
        sentences.add(text)
    return float(train.durations.max()), counts, sentences


def write_wav(path: Path, audio: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16")


def by_speaker(test: Manifest, rng: np.random.Generator) -> dict[str, list[dict]]:
    """The test rows grouped by speaker, each group in a seeded random order."""
    groups: dict[str, list[dict]] = {}
    for i in rng.permutation(len(test)).tolist():
        row = test[i]
        groups.setdefault(row.get("speaker", ""), []).append(row)
    return dict(sorted(groups.items()))


def speech_of(row: dict) -> np.ndarray:
    """An utterance trimmed to its speech (make_long_form's rule: frames within 40 dB of the loudest)."""
    return trim(load_audio(row["audio"], SAMPLE_RATE), SAMPLE_RATE, 40.0)


def joined_row(out: Path, name: str, uid: str, rows: list[dict], speech: list[np.ndarray], rng: np.random.Generator,
               pause: tuple[float, float]) -> dict:
    """Join trimmed utterances with pauses (make_long_form.make_recording), write the wav, return the row."""
    signal, _, _ = make_recording(rows, speech, rng, SAMPLE_RATE, pause, None, (0.0, 0.0))
    path = out / name / f"{uid}.wav"
    write_wav(path, signal)
    speakers = list(dict.fromkeys(r.get("speaker", "") for r in rows))
    return {"id": uid, "audio": str(path.relative_to(out)), "duration": round(len(signal) / SAMPLE_RATE, 4),
            "speaker": "+".join(speakers), "text": "".join(normalize_text(r["text"]) for r in rows),
            "sources": [r["id"] for r in rows]}


def make_long(out: Path, test: Manifest, size: int, train_max: float, seed: int) -> list[dict]:
    """Recordings of one speaker each, 2-3x ``train_max`` seconds long (see the module docstring)."""
    rng = np.random.default_rng([seed, LONG])
    pools = by_speaker(test, rng)
    speakers, rows, k = list(pools), [], 0
    while len(rows) < size and any(pools.values()):
        spk = speakers[k % len(speakers)]
        k += 1
        target = rng.uniform(2.0, 3.0) * train_max
        chosen, speech, seconds = [], [], 0.1  # at least: the pauses are 0.1 s or more
        while pools[spk] and seconds < target:
            x = speech_of(pools[spk][-1])
            if seconds >= 2.0 * train_max and seconds + len(x) / SAMPLE_RATE + 0.1 > 3.0 * train_max:
                break  # long enough, and this one would take it past 3x
            chosen.append(pools[spk].pop())
            speech.append(x)
            seconds += len(x) / SAMPLE_RATE + 0.1
        if seconds < 2.0 * train_max:  # this speaker ran out of utterances
            continue
        rows.append(joined_row(out, "test_long", f"test_long-{spk}-{len(rows):04d}", chosen, speech, rng, (0.1, 0.4)))
        rows[-1]["times_train_max"] = round(rows[-1]["duration"] / train_max, 3)
    return rows


def make_multispk(out: Path, test: Manifest, size: int, seed: int) -> list[dict]:
    """Two utterances of two different test speakers, joined (see the module docstring)."""
    rng = np.random.default_rng([seed, MULTISPK])
    pools = by_speaker(test, rng)
    if len(pools) < 2:
        raise ValueError(f"{test.path}: test_multispk needs two test speakers, found {len(pools)}")
    rows = []
    while len(rows) < size:
        live = [s for s, p in pools.items() if p]
        if len(live) < 2:
            break
        a, b = (live[i] for i in rng.choice(len(live), 2, replace=False))
        pair = [pools[a].pop(), pools[b].pop()]
        rows.append(joined_row(out, "test_multispk", f"test_multispk-{a}-{b}-{len(rows):04d}", pair,
                               [speech_of(r) for r in pair], rng, (0.1, 0.5)))
        rows[-1]["speakers"] = [a, b]
    return rows


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, np.ndarray]:
    """``speech + g * noise`` with ``g`` such that mean(speech**2) / mean((g * noise)**2) = 10**(snr_db / 10).

    Both are scaled down together when the mixture's peak passes :data:`PEAK` (the SNR does not change).

    Args:
        speech: (N,) float.
        noise: (N,) float, not all zero.

    Returns:
        (mixture, speech) as float32, (N,) each, the speech scaled as in the mixture.
    """
    speech, noise = speech.astype(np.float64), noise.astype(np.float64)
    gain = np.sqrt(np.mean(speech**2) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    mixture = speech + gain * noise
    scale = min(1.0, PEAK / max(np.abs(mixture).max(), 1e-12))
    return (scale * mixture).astype(np.float32), (scale * speech).astype(np.float32)


def held_out_noise_and_rooms(out: Path, seed: int, noise_seconds: float, rooms: int,
                             domain: str = "news") -> tuple[list[Path], list[Path]]:
    """Noise clips (one of each kind) and simulated rooms drawn from streams the corpus never uses."""
    from make_synthetic_aishell import write_noise, write_rirs
    from synth.espeak import engine
    from synth.textgen import build_lexicon

    lexicon = build_lexicon(engine().unspeakable, domain)  # babble is speech of random sentences of the grammar
    (out / "noise_test").mkdir(parents=True, exist_ok=True)
    (out / "rirs_test").mkdir(parents=True, exist_ok=True)
    noises = write_noise(out / "noise_test", 1, noise_seconds, seed, lexicon, stream=(HELD_OUT,))
    rirs = write_rirs(out / "rirs_test", rooms, 0, seed, stream=(HELD_OUT,))
    return [out / "noise_test" / n for n in noises], [out / "rirs_test" / r for r in rirs]


def make_noisy(out: Path, test: Manifest, size: int, snrs: list[float], seed: int, noise_seconds: float,
               rooms: int, keep_speech: bool, domain: str = "news") -> list[dict]:
    """Test utterances, reverberated, then with noise at each SNR of ``snrs`` in turn (module docstring)."""
    rng = np.random.default_rng([seed, NOISY])
    noise_files, rir_files = held_out_noise_and_rooms(out, seed, noise_seconds, rooms, domain)
    noises = [load_audio(p, SAMPLE_RATE) for p in noise_files]
    rirs = [torch.from_numpy(load_audio(p, SAMPLE_RATE)) for p in rir_files]
    rows = []
    for k, i in enumerate(rng.permutation(len(test))[:size].tolist()):
        row = test[i]
        clean = torch.from_numpy(load_audio(row["audio"], SAMPLE_RATE)).unsqueeze(0)  # (1, N)
        r, n = int(rng.integers(len(rirs))), int(rng.integers(len(noises)))
        wet = reverberate(clean, rirs[r])[0].numpy()  # (N,)
        noise = noises[n]
        start = int(rng.integers(len(noise)))
        noise = np.tile(noise, len(wet) // len(noise) + 2)[start:start + len(wet)]  # looped from a random offset
        snr = float(snrs[k % len(snrs)])
        mixture, speech = mix_at_snr(wet, noise, snr)  # an infinite SNR: the reverberant speech alone
        reverb_only = bool(np.isinf(snr))
        uid = f"test_noisy-{row['id']}-" + ("reverb" if reverb_only else f"snr{snr:g}")
        path = out / "test_noisy" / f"{uid}.wav"
        write_wav(path, mixture)
        if keep_speech:  # the reverberant speech alone, scaled as in the mixture: the SNR can be measured
            write_wav(path.with_suffix(".speech.wav"), speech)
        rows.append({"id": uid, "audio": str(path.relative_to(out)), "duration": round(len(mixture) / SAMPLE_RATE, 4),
                     "speaker": row.get("speaker", ""), "text": normalize_text(row["text"]), "snr_db": None if reverb_only else snr,
                     "noise": None if reverb_only else noise_files[n].name, "rir": rir_files[r].name, "sources": [row["id"]]})
    return rows


def new_speakers(data_speakers: set[str], count: int, seed: int):
    """``count`` new synthetic speakers, numbered after the last test speaker in DATA (AISHELL-1's test range)."""
    from synth.speakers import sample_speaker

    first = max([int(s[1:]) for s in data_speakers if s[:1] == "S" and s[1:].isdigit()] + [763]) + 1
    if first + count - 1 > LAST_TEST_SPEAKER:
        raise ValueError(f"no room for {count} new speakers after S{first - 1:04d} (test ids end at S0916)")
    rng = np.random.default_rng([seed, SPEAKERS])
    return [sample_speaker(f"S{first + i:04d}", rng) for i in range(count)]


def synthesise(out: Path, name: str, sentences: list[list[str]], speakers, seed: int, stream: int,
               jobs: int) -> list[dict]:
    """Read word-segmented sentences with the speakers in turn (make_synthetic_aishell.write_audio)."""
    from make_synthetic_aishell import Utterance, write_audio

    utts = [Utterance(f"{name}-{speakers[k % len(speakers)].id}-{k:04d}", name, speakers[k % len(speakers)],
                      tuple(words), 1_000_000 * (stream + 1) + k)  # indices the corpus (< 1e6) never uses
            for k, words in enumerate(sentences)]
    seconds = write_audio(utts, out, seed, jobs)  # OUT/NAME/SPEAKER/ID.wav
    return [{"id": u.id, "audio": f"{name}/{u.speaker.id}/{u.id}.wav", "duration": round(seconds[u.id], 4),
             "speaker": u.speaker.id, "text": "".join(u.words), "words": " ".join(u.words)} for u in utts]


def rare_sentences(lexicon, counts: Counter, seen: set[str], below: int, size: int, seed: int,
                   pool: int) -> tuple[list[list[str]], set[str]]:
    """``size`` grammar sentences (of ``pool`` drawn) rich in rare characters (seen 1 to ``below`` - 1 times).

    Chosen greedily for coverage: a sentence scores, for each rare character it holds, 1 / (1 + how many chosen
    sentences hold that character already), so the set spreads over the rare characters instead of repeating the
    one phrase that holds the most of them. Sentences of training, and those with an unseen character, are left out.
    """
    from synth.textgen import NewsGenerator

    rare = {c for c, n in counts.items() if n < below}
    if not rare:
        raise ValueError(f"no training character is seen fewer than {below} times (the rarest: "
                         f"{min(counts.values())} times); raise --rare-below")
    gen = NewsGenerator(lexicon, np.random.default_rng([seed, RARE]).integers(2**32))
    candidates, texts = [], set()
    for _ in range(pool):
        words = gen.sentence()
        text = "".join(words)
        if text in seen or text in texts or any(c not in counts for c in text):
            continue
        texts.add(text)
        if any(c in rare for c in text):
            candidates.append((words, sorted({c for c in text if c in rare})))
    chosen: Counter = Counter()

    def score(k: int) -> float:
        return sum(1.0 / (1 + chosen[c]) for c in candidates[k][1])

    heap = [(-score(k), k) for k in range(len(candidates))]  # scores only fall: lazy greedy
    heapq.heapify(heap)
    picked = []
    while heap and len(picked) < size:
        _, k = heapq.heappop(heap)
        current = score(k)
        if heap and current < -heap[0][0]:
            heapq.heappush(heap, (-current, k))  # stale: back in at its current score
            continue
        picked.append(k)
        chosen.update(candidates[k][1])
    return [candidates[k][0] for k in picked], rare


def random_sentences(lexicon, counts: Counter, size: int, seed: int) -> list[list[str]]:
    """Uniformly drawn words of the lexicon (those of training characters only), 6-20 characters a sentence."""
    from synth.textgen import lexicon_words, random_word_sentence

    words = [w for w in lexicon_words(lexicon) if all(c in counts for c in w)]
    rng = np.random.default_rng([seed, RANDOMTEXT])
    return [random_word_sentence(words, rng) for _ in range(size)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="prepared data: train.jsonl and test.jsonl")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    p.add_argument("--size", type=int, default=200, help="utterances per condition (test_long: half as many)")
    p.add_argument("--rare-below", type=int, default=50, help="N: a rare character is seen 1 to N-1 times in training")
    p.add_argument("--rare-pool", type=int, default=20000, help="grammar sentences drawn to choose test_rare from")
    p.add_argument("--snr", type=float, nargs="+", default=[0.0, 5.0, 10.0], help="test_noisy SNRs (dB), in turn; inf: reverberation only, no noise")
    p.add_argument("--noise-seconds", type=float, default=10.0, help="length of each held-out noise clip")
    p.add_argument("--rooms", type=int, default=8, help="held-out simulated rooms")
    p.add_argument("--speakers", type=int, default=10, help="new speakers reading the eSpeak conditions")
    p.add_argument("--keep-speech", action="store_true",
                   help="test_noisy: also write each mixture's speech alone (ID.speech.wav), to measure the SNR")
    p.add_argument("--domain", default="news", help="the synthetic corpus's text domain (its stats.json says)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="synthesis processes")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # results that do not depend on the thread count
    try:
        return build(args)
    finally:
        torch.set_num_threads(threads)


def build(args: argparse.Namespace) -> int:
    train, test = Manifest(args.data / "train.jsonl"), Manifest(args.data / "test.jsonl")
    train_max, counts, seen = train_facts(train)
    facts: dict = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                   "train_max_seconds": round(train_max, 4), "train_characters": len(counts)}
    made: dict[str, list[dict]] = {}
    if "test_long" in args.conditions:
        made["test_long"] = make_long(args.out, test, max(1, args.size // 2), train_max, args.seed)
    if "test_noisy" in args.conditions:
        made["test_noisy"] = make_noisy(args.out, test, args.size, args.snr, args.seed, args.noise_seconds,
                                        args.rooms, args.keep_speech, args.domain)
    if "test_multispk" in args.conditions:
        made["test_multispk"] = make_multispk(args.out, test, args.size, args.seed)
    if any(c in args.conditions for c in ESPEAK_CONDITIONS):
        from synth.espeak import engine
        from synth.textgen import build_lexicon

        lexicon = build_lexicon(engine().unspeakable, args.domain)
        manifests = [train, test] + [Manifest(p) for p in [args.data / "dev.jsonl"] if p.exists()]
        heard = {row.get("speaker", "") for m in manifests for row in m}
        speakers = new_speakers(heard, args.speakers, args.seed)
        facts["new_speakers"] = [s.id for s in speakers]
        if "test_rare" in args.conditions:
            sentences, rare = rare_sentences(lexicon, counts, seen, args.rare_below, args.size, args.seed,
                                             args.rare_pool)
            rows = synthesise(args.out, "test_rare", sentences, speakers, args.seed, RARE, args.jobs)
            for row in rows:
                row["focus_chars"] = "".join(sorted({c for c in row["text"] if c in rare}))
            facts["rare_characters"] = {c: counts[c] for c in sorted(rare, key=lambda c: (counts[c], c))}
            made["test_rare"] = rows
        if "test_randomtext" in args.conditions:
            made["test_randomtext"] = synthesise(args.out, "test_randomtext",
                                                 random_sentences(lexicon, counts, args.size, args.seed), speakers,
                                                 args.seed, RANDOMTEXT, args.jobs)
    for name, rows in made.items():
        if not rows:
            raise ValueError(f"{name}: no utterance could be made from {args.data}")
        write_jsonl(args.out / f"{name}.jsonl", rows)
        hours = sum(r["duration"] for r in rows) / 3600
        facts[name] = {"utterances": len(rows), "hours": round(hours, 4),
                       "max_seconds": max(r["duration"] for r in rows)}
        print(f"{name}: {len(rows)} utterances, {hours:.3f} h -> {args.out / name}.jsonl", flush=True)
    with atomic_write(args.out / "conditions.json") as f:
        json.dump(facts, f, ensure_ascii=False, indent=2)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ValueError as e:
        sys.exit(f"make_test_conditions: {e}")
