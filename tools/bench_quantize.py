"""fp32 / int8 / int8 per-channel / 8-16 mix / fp16 side by side: size, RTF, CER and agreement with fp32.

One run exports the model to a temporary folder, writes every variant of ``asr.export.quantize.MODES``,
decodes the same audio with each (ONNX Runtime, CPU, ``--threads`` threads) in CTC greedy search and
attention rescoring, and prints each figure with its ratio to fp32 measured in the same run (under a
shared, loaded CPU only the ratios compare across runs). It also prints the machine load before and
after, and the largest |Δ log-prob| and frame argmax agreement of the CTC posteriors against fp32.

Trained model on a test manifest (CER against the references):

    .venv/bin/python tools/bench_quantize.py --model recipes/aishell/exp/demo/model.safetensors \\
        --manifest recipes/aishell/data/demo/test.jsonl [--utts 300] [--threads 1]

AISHELL-size Conformer (conf/model/conformer.yaml, 4233 units) with random weights on synthetic audio
(no CER: an untrained model has none worth printing; size, RTF and agreement only):

    .venv/bin/python tools/bench_quantize.py --aishell-size [--utts 6 --seconds 6]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from bench_inference import aishell_size_model, calibrate_blank, folder_mb, synthetic_audio, timed_transcribe  # noqa: E402

from asr.data.audio import load_audio  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.decoding.cer import compute_cer  # noqa: E402
from asr.export.onnx import export_folder  # noqa: E402
from asr.export.quantize import MODES, quantize_folder  # noqa: E402
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from asr.inference.recognizer import Recognizer  # noqa: E402
from asr.modelfile import load_model_file  # noqa: E402

SEARCH_MODES = ("ctc_greedy_search", "attention_rescoring")


def load() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` prints them."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def posterior_agreement(reference: OnnxRuntimeBackend, other: OnnxRuntimeBackend,
                        feats: list[np.ndarray]) -> tuple[float, float]:
    """Largest |Δ log-prob| and frame argmax agreement of CTC posteriors against ``reference``, one utterance at a time."""
    worst, same, frames = 0.0, 0, 0
    for f in feats:
        lens = np.array([f.shape[0]], dtype=np.int64)
        a = reference.ctc_log_probs(reference.encode(f[None], lens)[0])[0]  # (T', V)
        b = other.ctc_log_probs(other.encode(f[None], lens)[0])[0]
        worst = max(worst, float(np.abs(a - b).max()))
        same += int((a.argmax(-1) == b.argmax(-1)).sum())
        frames += a.shape[0]
    return worst, same / max(frames, 1)


def encoder_times(variants: dict[str, Path], feats: np.ndarray, args) -> None:
    """Median encoder wall time per variant on one utterance, the variants interleaved round by round so that
    a change of machine load hits all of them alike (the steadiest speed ratio on a shared machine)."""
    backends = {name: OnnxRuntimeBackend(folder, num_threads=args.threads) for name, folder in variants.items()}
    lens = np.array([feats.shape[0]], dtype=np.int64)
    times: dict[str, list[float]] = {name: [] for name in backends}
    for backend in backends.values():
        backend.encode(feats[None], lens)  # warm-up
    for _ in range(args.encoder_rounds):
        for name, backend in backends.items():
            start = time.perf_counter()
            backend.encode(feats[None], lens)
            times[name].append(time.perf_counter() - start)
    ref = float(np.median(times["fp32"]))
    print(f"encoder alone, {feats.shape[0]} frames, median of {args.encoder_rounds} interleaved rounds: " + ", ".join(
        f"{name} {1000 * np.median(t):.1f} ms ({np.median(t) / ref:.2f}x)" for name, t in times.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="trained model file (model.safetensors)")
    parser.add_argument("--manifest", help="test manifest (with --model)")
    parser.add_argument("--aishell-size", action="store_true", help="random-weight AISHELL-size Conformer")
    parser.add_argument("--utts", type=int, help="utterances (manifest: the first N; --aishell-size: default 6)")
    parser.add_argument("--seconds", type=float, default=6.0, help="--aishell-size: seconds per synthetic utterance")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1, help="timed passes per variant and search (best kept)")
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES), help="variants beside fp32")
    parser.add_argument("--search", nargs="+", default=list(SEARCH_MODES), choices=list(SEARCH_MODES),
                        help="search modes to run")
    parser.add_argument("--posterior-utts", type=int, default=20, help="utterances for the posterior agreement")
    parser.add_argument("--encoder-rounds", type=int, default=0,
                        help="also time the encoder alone on the first utterance, variants interleaved, this many rounds")
    args = parser.parse_args()
    if bool(args.model) == args.aishell_size or bool(args.model) != bool(args.manifest):
        parser.error("give --model and --manifest, or --aishell-size")

    print(f"start: {time.strftime('%Y-%m-%d %H:%M:%S')}, {load()}, cpu_count {os.cpu_count()}")
    refs: dict[str, str] | None = None
    if args.aishell_size:
        loaded = aishell_size_model()
        wavs = synthetic_audio(args.utts or 6, args.seconds)
        calibrate_blank(loaded, wavs[0], 4.0)
        ids = [f"synthetic{i}" for i in range(len(wavs))]
        print(f"AISHELL-size Conformer, {loaded.model.num_params() / 1e6:.1f}M parameters, random weights; "
              f"{len(wavs)} synthetic utterances x {args.seconds:g} s (no CER: untrained)")
    else:
        loaded = load_model_file(args.model)
        rows = list(Manifest(args.manifest))[: args.utts]
        wavs = [load_audio(r["audio"]) for r in rows]
        ids, refs = [r["id"] for r in rows], {r["id"]: r["text"] for r in rows}
        print(f"{args.model}: {len(rows)} utterances of {args.manifest}")
    audio_seconds = sum(w.shape[-1] for w in wavs) / loaded.fbank.sample_rate
    print(f"{audio_seconds:.0f} s of audio; {args.threads} thread(s), batch {args.batch_size}, beam 10, nbest 10; "
          f"RTF = best of {args.repeats} wall time(s) of Recognizer.transcribe (features included) / audio seconds")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        export_folder(loaded, root, "bench")
        for mode in args.modes:
            start = time.perf_counter()
            quantize_folder(root, root / mode, mode)
            print(f"  wrote {mode} in {time.perf_counter() - start:.0f} s ({MODES[mode].describe()})")
        variants = {"fp32": root, **{m: root / m for m in args.modes}}
        fp32 = OnnxRuntimeBackend(root, num_threads=args.threads)
        feats = [fp32.cmvn(fp32.fbank(w)) for w in wavs[: args.posterior_utts]]
        warm = Recognizer(fp32, fp32.tokenizer, fp32.fbank, fp32.cmvn, beam=10, nbest=10)
        for search in args.search:  # first-call costs (lazy imports, allocator) outside every timing
            timed_transcribe(warm, wavs[: 2 * args.batch_size], search, args.batch_size, 1)
        if args.encoder_rounds:
            encoder_times(variants, feats[0], args)
        base: dict[str, tuple[float, list[str]]] = {}
        header = (f"{'variant':13} {'MB':>6} {'x fp32':>6} {'search':20} {'RTF':>7} {'x fp32':>6} {'CER %':>6} "
                  f"{'d CER':>6} {'same text':>9} {'max|dlogp|':>10} {'argmax=':>7}")
        print(header)
        for name, folder in variants.items():
            backend = OnnxRuntimeBackend(folder, num_threads=args.threads)
            rec = Recognizer(backend, backend.tokenizer, backend.fbank, backend.cmvn, beam=10, nbest=10)
            worst, argmax = posterior_agreement(fp32, backend, feats)
            size = folder_mb(folder)
            for search in args.search:
                seconds, texts = timed_transcribe(rec, wavs, search, args.batch_size, args.repeats)
                base.setdefault(search, (seconds, texts))
                ref_seconds, ref_texts = base[search]
                same = np.mean([a == b for a, b in zip(texts, ref_texts)])
                if refs is not None:
                    cer = 100 * compute_cer(refs, dict(zip(ids, texts))).total.cer
                    ref_cer = 100 * compute_cer(refs, dict(zip(ids, ref_texts))).total.cer
                    cer_cols = f"{cer:6.2f} {cer - ref_cer:+6.2f}"
                else:
                    cer_cols = f"{'n/a':>6} {'n/a':>6}"
                print(f"{name:13} {size:6.2f} {size / folder_mb(root):6.2f} {search:20} {seconds / audio_seconds:7.4f} "
                      f"{seconds / ref_seconds:6.2f} {cer_cols} {same:9.1%} {worst:10.3f} {argmax:7.1%}", flush=True)
    print(f"end: {time.strftime('%Y-%m-%d %H:%M:%S')}, {load()}")


if __name__ == "__main__":
    main()
