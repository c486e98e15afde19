"""Throughput of the on-the-fly augmentations in one DataLoader worker (one process, one torch thread).

    python tools/bench_augment.py [--utts 40] [--repeat 3] [--rir-sec 0.8]

Makes synthetic 3-6 s utterances, noise files and exponentially decaying RIRs in a temporary folder, then prints,
in seconds of input audio processed per second: fbank alone (80 mel, 25/10 ms, + mean/variance normalisation: the
baseline), each augmentation alone at prob=1, SpecAugment, and the full chain + fbank + SpecAugment, both as
``conf/augment/full.yaml`` configures it and with every augmentation at prob=1. "x fbank" is the time relative to
the baseline. The target for the full chain is >= 300 s/s per worker.
"""
from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

from asr.augment.chain import AugmentChain
from asr.augment.config import build_augment, load_augment_config
from asr.augment.noise import AddNoise
from asr.augment.reverb import Reverb
from asr.augment.specaug import SpecAugment
from asr.augment.speed import SpeedPerturb
from asr.augment.splice import Splice
from asr.augment.volume import Volume
from asr.features.fbank import Fbank

RATE = 16000
ROOT = Path(__file__).resolve().parents[1]


def voiced(seconds: float, f0: float, g: torch.Generator) -> torch.Tensor:
    """A speech-like ``(1, N)`` signal: harmonics of a wobbling f0 under a syllable-rate envelope, plus noise."""
    t = torch.arange(int(seconds * RATE)) / RATE
    phase = 2 * math.pi * torch.cumsum(f0 * (1 + 0.08 * torch.sin(2 * math.pi * 0.6 * t)), 0) / RATE
    wav = sum(torch.sin(h * phase) / h for h in range(1, 12)) * torch.sin(2 * math.pi * 2.5 * t).clamp(min=0)
    return (0.1 * wav + 0.003 * torch.randn(len(t), generator=g)).unsqueeze(0)


def make_data(folder: Path, num_utts: int, rir_sec: float, seed: int) -> tuple[list[dict], Path, Path]:
    """Utterances in memory; a noise folder and an RIR folder on disk."""
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    utts = [{"id": f"u{i}", "wav": voiced(rng.uniform(3, 6), rng.uniform(100, 250), g), "sample_rate": RATE,
             "text": "测试" * 5, "speaker": f"S{i % 7}"} for i in range(num_utts)]
    for sub in ("noise", "rir"):
        (folder / sub).mkdir()
    for k in range(4):
        sf.write(folder / "noise" / f"n{k}.wav", (0.05 * torch.randn(10 * RATE, generator=g)).numpy(), RATE)
        n = int(rir_sec * RATE)
        rir = torch.randn(n, generator=g) * torch.exp(-torch.arange(n) / (0.1 * RATE))  # RT60 about 0.7 s
        sf.write(folder / "rir" / f"r{k}.wav", rir.numpy(), RATE)
    return utts, folder / "noise", folder / "rir"


def throughput(fn, utts: list[dict], repeat: int) -> float:
    """Best of ``repeat`` passes: seconds of input audio per second of ``fn(sample, rng)``."""
    audio = sum(u["wav"].shape[-1] for u in utts) / RATE
    fn(utts[0], random.Random(0))  # warm-up: caches, lazy imports
    best = math.inf
    for r in range(repeat):
        start = time.perf_counter()
        for i, sample in enumerate(utts):
            fn(sample, random.Random(r * len(utts) + i))
        best = min(best, time.perf_counter() - start)
    return audio / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--utts", type=int, default=40)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rir-sec", type=float, default=0.8, help="length of the recorded RIRs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        utts, noise_dir, rir_dir = make_data(Path(tmp), args.utts, args.rir_sec, args.seed)

        def donor(rng, exclude_speaker):
            return rng.choice([u for u in utts if u["speaker"] != exclude_speaker])

        fbank = Fbank()

        def features(wav):
            feats = fbank(wav)
            return (feats - feats.mean(0)) / (feats.std(0) + 1e-5)

        def with_features(chain, specaug):
            def run(sample, rng):
                feats = features(chain(sample, rng)["wav"])
                return specaug(feats, rng) if specaug is not None else feats
            return run

        splice = Splice(1.0)
        pieces = {
            "speed 0.9/1.1": SpeedPerturb(1.0, [0.9, 1.1]),
            "volume": Volume(1.0),
            "noise": AddNoise(1.0, str(noise_dir)),
            f"reverb (recorded RIR {args.rir_sec:g} s)": Reverb(1.0, rir_list=str(rir_dir)),
            "splice (2-3 speakers)": splice,
        }
        try:
            pieces["reverb (simulated rooms)"] = Reverb(1.0, simulate={"num_rooms": 8})
        except ImportError:
            print("(pyroomacoustics not installed: simulated reverb not measured)")
        chain_yaml, specaug_yaml = build_augment(load_augment_config(ROOT / "conf/augment/full.yaml",
                                                                     str(noise_dir), str(rir_dir)))
        all_on = AugmentChain([Splice(1.0), SpeedPerturb(1.0, [0.9, 1.1]), Volume(1.0),
                               Reverb(1.0, rir_list=str(rir_dir)), AddNoise(1.0, str(noise_dir))])
        for chain in (chain_yaml, all_on):
            chain.set_donor(donor)
        splice.set_donor(donor)

        audio = sum(u["wav"].shape[-1] for u in utts) / RATE
        print(f"{args.utts} synthetic utterances, {audio:.0f} s of audio; 1 thread; best of {args.repeat}")
        base = throughput(lambda s, rng: features(s["wav"]), utts, args.repeat)
        rows = [("fbank + normalisation (baseline)", base)]
        rows += [(name, throughput(aug, utts, args.repeat)) for name, aug in pieces.items()]
        feats = {u["id"]: features(u["wav"]) for u in utts}
        specaug = SpecAugment(time_warp=5)
        rows.append(("specaug 2x27 F, 2x5% T, warp 5", throughput(lambda s, rng: specaug(feats[s["id"]], rng),
                                                                  utts, args.repeat)))
        rows.append(("full.yaml chain + fbank + specaug", throughput(with_features(chain_yaml, specaug_yaml),
                                                                     utts, args.repeat)))
        rows.append(("all at p=1 + fbank + specaug", throughput(with_features(all_on, specaug), utts, args.repeat)))

    print(f"{'':36s} {'audio s/s':>10s} {'x fbank':>8s}")
    for name, speed in rows:
        print(f"{name:36s} {speed:10.0f} {base / speed:8.2f}")


if __name__ == "__main__":
    main()
