"""Score transcripts of the long-form set (``tools/make_long_form.py``): long-form CER against the same utterances
decoded one by one, and the timestamp errors of the recovered utterances.

Usage:
    python tools/score_long_form.py --set data/demo/long_form/long_form.jsonl \\
        --one-by-one torch=exp/demo/long_form/one_by_one_torch/attention_rescoring/text \\
        --transcripts torch/energy=exp/demo/long_form/torch_energy.jsonl \\
        --transcripts torch/silero=exp/demo/long_form/torch_silero.jsonl --out exp/demo/long_form/summary.json

``--transcripts NAME=FILE``: ``asr-transcribe --json`` output for the set's recordings; NAME is ``BACKEND/VAD``, and
its reference is the ``--one-by-one BACKEND=FILE``: the ``text`` file ``asr.decode`` wrote for the set's
``utterances.jsonl`` (``id hypothesis`` lines).

Long-form CER: per recording, the whole transcript against the utterances' texts joined, both normalised
(:func:`asr.data.text.normalize_text`); errors summed over the recordings and divided by the reference
characters. One-by-one CER: the same utterances' hypotheses, scored the same way (per recording, joined), so the
two differ only by what segmentation and context did.

Timestamps: each transcript segment is given to the true utterance it overlaps most in time; an utterance's
recovered start is the earliest start of its segments and its end the latest end. Errors are |recovered - true|
in milliseconds (median and 90th percentile, start and end apart). Utterances without a segment are counted as
missed; segments overlapping two utterances by more than 0.1 s each, as merged.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.data.text import normalize_text  # noqa: E402
from asr.decoding.cer import compute_cer, summary  # noqa: E402
from asr.utils.io import atomic_write, read_jsonl  # noqa: E402


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def timestamp_errors(truth: list[dict], segments: list[dict]) -> dict:
    """Match segments to true utterances (see the module docstring).

    Args:
        truth: ``{start, end}`` of each utterance's speech, in order.
        segments: ``{start, end}`` of each transcript segment.

    Returns:
        ``start_ms``, ``end_ms``: per matched utterance, the absolute errors; ``missed``, ``merged`` counts.
    """
    spans = [(u["start"], u["end"]) for u in truth]
    assigned: dict[int, list[tuple[float, float]]] = {}
    merged = 0
    for s in segments:
        seg = (s["start"], s["end"])
        shares = [overlap(seg, span) for span in spans]
        if max(shares, default=0.0) <= 0:
            continue
        merged += sum(x > 0.1 for x in shares) > 1
        assigned.setdefault(int(np.argmax(shares)), []).append(seg)
    start_ms, end_ms = [], []
    for i, span in enumerate(spans):
        if i in assigned:
            start_ms.append(1000 * abs(min(a for a, _ in assigned[i]) - span[0]))
            end_ms.append(1000 * abs(max(b for _, b in assigned[i]) - span[1]))
    return {"start_ms": start_ms, "end_ms": end_ms, "missed": len(spans) - len(assigned), "merged": merged}


def score_run(recordings: list[dict], transcripts: dict[str, dict], one_by_one: dict[str, str] | None) -> dict:
    """Long-form CER, one-by-one CER and timestamp errors of one run over the set."""
    refs = {r["id"]: normalize_text(r["text"]) for r in recordings}
    hyps, start_ms, end_ms, missed, merged, failed = {}, [], [], 0, 0, []
    for r in recordings:
        row = transcripts.get(r["id"])
        if row is None or row.get("error"):
            failed.append(r["id"])
            hyps[r["id"]] = ""
            continue
        hyps[r["id"]] = normalize_text(row["text"])
        t = timestamp_errors(r["utterances"], row["segments"])
        start_ms += t["start_ms"]
        end_ms += t["end_ms"]
        missed, merged = missed + t["missed"], merged + t["merged"]
    out = {"long_form": summary(compute_cer(refs, hyps)), "failed_recordings": failed,
           "utterances": sum(len(r["utterances"]) for r in recordings), "missed": missed, "merged": merged,
           "start_ms": {"median": float(np.median(start_ms)), "p90": float(np.percentile(start_ms, 90))},
           "end_ms": {"median": float(np.median(end_ms)), "p90": float(np.percentile(end_ms, 90))}}
    if one_by_one is not None:
        joined = {r["id"]: normalize_text("".join(one_by_one.get(u["id"], "") for u in r["utterances"]))
                  for r in recordings}
        out["one_by_one"] = summary(compute_cer(refs, joined))
        out["ratio"] = out["long_form"]["cer"] / out["one_by_one"]["cer"] if out["one_by_one"]["cer"] else None
    return out


def read_text(path: str) -> dict[str, str]:
    """``asr.decode``'s ``text`` file: ``id hypothesis`` lines."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return {line.split(" ")[0]: line.partition(" ")[2] for line in lines if line.strip()}


def table(results: dict[str, dict]) -> str:
    """A markdown table of the runs."""
    lines = ["| backend | VAD | long-form CER % | one-by-one CER % | ratio | start error ms (median / p90) | "
             "end error ms (median / p90) | missed / merged of N |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        backend, _, vad = name.partition("/")
        one = f"{100 * r['one_by_one']['cer']:.2f}" if "one_by_one" in r else "-"
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") else "-"
        lines.append(
            f"| {backend} | {vad} | {100 * r['long_form']['cer']:.2f} | {one} | {ratio} | "
            f"{r['start_ms']['median']:.0f} / {r['start_ms']['p90']:.0f} | {r['end_ms']['median']:.0f} / "
            f"{r['end_ms']['p90']:.0f} | {r['missed']} / {r['merged']} of {r['utterances']} |")
    return "\n".join(lines)


def named(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep:
            sys.exit(f"score_long_form: {what} takes NAME=FILE, got {v!r}")
        out[name] = path
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", required=True, help="long_form.jsonl of tools/make_long_form.py")
    p.add_argument("--transcripts", action="append", default=[], help="BACKEND/VAD=asr-transcribe --json output")
    p.add_argument("--one-by-one", action="append", default=[], help="BACKEND=asr.decode's MODE/text")
    p.add_argument("--out", help="write the figures as JSON here")
    args = p.parse_args(argv)
    recordings = list(read_jsonl(args.set))
    references = {name: read_text(path) for name, path in named(args.one_by_one, "--one-by-one").items()}
    results = {}
    for name, path in named(args.transcripts, "--transcripts").items():
        transcripts = {Path(row["file"]).stem: row for row in read_jsonl(path)}
        results[name] = score_run(recordings, transcripts, references.get(name.partition("/")[0]))
    print(table(results))
    if args.out:
        with atomic_write(args.out) as f:
            json.dump(results, f, ensure_ascii=False, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
