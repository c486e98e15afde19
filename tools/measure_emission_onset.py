"""When does a model emit its first token, relative to the start of speech? The check for the early-emission failure
of streaming models (recipes/aishell/RESULTS.md, "Streaming demo model": a model that writes the predictable opening
words of a sentence before their audio cannot decode chunk by chunk).

    .venv/bin/python tools/measure_emission_onset.py --model exp/demo_streaming/model.safetensors \\
        --manifest data/demo/test.jsonl --num 50 --chunks 0 16 4 [--json onset.json]

For each utterance (``--num`` spread over the manifest) and chunk size (0 = full context): speech onset by the
energy VAD (:func:`asr.inference.stream_cli.speech_span`), the CTC log-probabilities of the chunk-masked encoder,
and the start of the first encoder frame whose best label is not blank (greedy search's first emission). Printed
per chunk size: the share of utterances whose first token comes before the speech onset, the median and 90th
percentile of the lead (onset - first emission, ms; positive = early), and the mean number of tokens emitted before
the onset. A frame's start is ``t * subsampling_rate * frame_shift``; one encoder frame is the resolution.

Also printed: the share of emitted tokens that directly follow another token (no blank frame between them). A
model whose tokens sit on their audio emits one peak per syllable with blanks between (a syllable lasts several
encoder frames); a model that writes a memorised sentence in bursts (several characters in consecutive frames, at
the start of the utterance or at the end of a chunk) has a high share, and cannot decode chunk by chunk what it
writes at the end of a whole utterance.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from asr.data.audio import load_audio  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.inference.backends.torch_backend import TorchBackend  # noqa: E402
from asr.inference.recognizer import Recognizer  # noqa: E402
from asr.inference.stream_cli import speech_span  # noqa: E402
from asr.modelfile import load_model_file  # noqa: E402
from asr.utils.io import atomic_write  # noqa: E402


def emissions_before(log_probs: np.ndarray, onset_s: float, frame_s: float, blank: int = 0) -> tuple[float | None, int]:
    """Lead of the first emission over the speech onset, and the tokens greedy search emits before the onset.

    Args:
        log_probs: (T, V) CTC log-probabilities of one utterance.
        onset_s: speech onset in seconds.
        frame_s: seconds per encoder frame.
        blank: blank id.

    Returns:
        (onset - start of the first non-blank frame in seconds, None if every frame is blank;
        tokens of the greedy path - repeats merged, blanks removed - that start before ``onset_s``).
    """
    best = log_probs.argmax(axis=1)  # (T,)
    emitting = np.flatnonzero(best != blank)
    if len(emitting) == 0:
        return None, 0
    starts = [t for t in emitting if t == 0 or best[t - 1] != best[t]]  # a token starts where its run starts
    early = sum(t * frame_s < onset_s for t in starts)
    return onset_s - emitting[0] * frame_s, int(early)


def burst_share(log_probs: np.ndarray, blank: int = 0) -> tuple[int, int]:
    """(tokens of the greedy path that start right after another token's frame, tokens of the greedy path).

    Args:
        log_probs: (T, V) CTC log-probabilities of one utterance.
    """
    best = log_probs.argmax(axis=1)  # (T,)
    starts = [t for t in range(len(best)) if best[t] != blank and (t == 0 or best[t - 1] != best[t])]
    return sum(t > 0 and best[t - 1] != blank for t in starts), len(starts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--num", type=int, default=50)
    parser.add_argument("--chunks", type=int, nargs="+", default=[0, 16, 4], help="0 = full context")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    loaded = load_model_file(args.model)
    rows = list(Manifest(args.manifest))
    rows = [rows[int(i)] for i in np.linspace(0, len(rows) - 1, min(args.num, len(rows)))]
    rate = loaded.fbank.sample_rate
    audio = [load_audio(r["audio"], rate) for r in rows]
    onsets = [speech_span(x, rate)[0] for x in audio]
    frame_s = loaded.model.encoder.subsampling_rate * loaded.fbank.frame_shift_ms / 1000
    print(f"{len(rows)} utterances of {args.manifest}; encoder frame {1000 * frame_s:.0f} ms; load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'context':>10} {'first token before onset':>25} {'lead ms median / p90':>21} {'tokens before onset':>20} "
          f"{'tokens right after a token':>27}")
    figures = {}
    for chunk in args.chunks:
        rec = Recognizer(TorchBackend(loaded.model, chunk_size=chunk), loaded.tokenizer, loaded.fbank, loaded.cmvn)
        leads, early, bursts = [], [], np.zeros(2, dtype=int)
        for x, onset in zip(audio, onsets):
            feats = rec.pipeline.features(torch.from_numpy(x)[None])  # (T, F)
            enc = rec.encode(feats[None], torch.tensor([len(feats)]))
            lead, n = emissions_before(enc.ctc_log_probs[0, : int(enc.lens[0])], onset, frame_s)
            early.append(n)
            bursts += burst_share(enc.ctc_log_probs[0, : int(enc.lens[0])])
            if lead is not None:
                leads.append(lead)
        before = sum(v > 0 for v in leads)
        name = "full" if chunk == 0 else f"chunk {chunk}"
        print(f"{name:>10} {before:>19}/{len(leads):<5} {1000 * np.median(leads):>10.0f} / "
              f"{1000 * np.percentile(leads, 90):<8.0f} {np.mean(early):>20.2f} {100 * bursts[0] / max(1, bursts[1]):>26.1f}%")
        figures[name] = {"before_onset": int(before), "utterances": len(leads), "leads_s": [float(v) for v in leads],
                         "tokens_before_onset": [int(v) for v in early], "tokens_after_a_token": int(bursts[0]),
                         "tokens": int(bursts[1])}
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(figures, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
