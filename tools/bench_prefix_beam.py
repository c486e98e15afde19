"""Throughput of CTC prefix beam search: fast vs fast with blank skipping vs the loop reference.

Log-probabilities are random but CTC-like: each frame is peaked on one token (blank for most
frames) over Gaussian logits. The fast search must return exactly the reference's N-best.

    .venv/bin/python tools/bench_prefix_beam.py [--utts 32 --frames 150 --vocab 4233 --beam 10]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from asr.decoding.ctc_prefix_beam import ctc_prefix_beam_search, ctc_prefix_beam_search_reference


def peaky_log_probs(rng: np.random.Generator, frames: int, vocab: int, blank_rate: float) -> np.ndarray:
    """(T, V) float32 log-softmax of Gaussian logits with a peak on blank or a random token per frame."""
    logits = 2.0 * rng.standard_normal((frames, vocab))
    peak = np.where(rng.random(frames) < blank_rate, 0, rng.integers(1, vocab, frames))
    logits[np.arange(frames), peak] += rng.uniform(10.0, 30.0, frames)
    return (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)


def timed(search, utts: list[np.ndarray], repeats: int = 1, **kwargs) -> tuple[list, float]:
    """Results of ``search`` on every utterance, and the best wall time of ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        results = [search(lp, **kwargs) for lp in utts]
        best = min(best, time.perf_counter() - start)
    return results, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utts", type=int, default=32)
    parser.add_argument("--frames", type=int, default=150, help="frames per utterance (after subsampling)")
    parser.add_argument("--vocab", type=int, default=4233, help="AISHELL-1 character vocabulary")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--blank-rate", type=float, default=0.6, help="fraction of frames peaked on blank")
    parser.add_argument("--skip-threshold", type=float, default=0.999)
    parser.add_argument("--repeats", type=int, default=3, help="fast searches: best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    utts = [peaky_log_probs(rng, args.frames, args.vocab, args.blank_rate) for _ in range(args.utts)]
    frames = args.utts * args.frames
    ctc_prefix_beam_search(utts[0], beam=args.beam)  # warm-up

    fast, t_fast = timed(ctc_prefix_beam_search, utts, args.repeats, beam=args.beam)
    skip, t_skip = timed(
        ctc_prefix_beam_search, utts, args.repeats, beam=args.beam, blank_skip_threshold=args.skip_threshold
    )
    ref, t_ref = timed(ctc_prefix_beam_search_reference, utts, beam=args.beam)

    identical = all(
        [h for h, _ in a] == [h for h, _ in b] and np.allclose([s for _, s in a], [s for _, s in b], rtol=0, atol=1e-6)
        for a, b in zip(fast, ref)
    )
    same_best = np.mean([a[0][0] == b[0][0] for a, b in zip(skip, fast)])
    skipped = np.mean([np.exp(lp[:, 0]) > args.skip_threshold for lp in utts])
    print(f"{args.utts} utterances x {args.frames} frames, V={args.vocab}, beam={args.beam}")
    for name, seconds in [("reference", t_ref), ("fast", t_fast), (f"fast, skip > {args.skip_threshold}", t_skip)]:
        print(f"{name:>22}: {frames / seconds:9.0f} frames/s  ({t_ref / seconds:5.1f}x reference)")
    print(f"fast N-best == reference N-best: {identical}")
    print(f"blank skipping: {skipped:.0%} of frames skipped, 1-best unchanged on {same_best:.0%} of utterances")
    if not identical:
        raise SystemExit("fast and reference N-best differ")


if __name__ == "__main__":
    main()
