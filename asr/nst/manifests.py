"""One NST iteration's manifests: CER-Hypo of every pseudo-label, the filter, and the student's training manifest.

Usage:
    python -m asr.nst.manifests --hyps exp/nst/iter1/pseudo/hyps.jsonl --labelled data/demo/nst/labelled.jsonl \\
        --out exp/nst/iter1/filter --threshold 0.1            # or --keep-best 50 (percent), --keep-best 100: all

Reads the pseudo-labeller's ``hyps.jsonl`` (:mod:`asr.nst.pseudo_label`: per utterance ``id, audio, duration,
speaker`` and the hypotheses ``plain``, ``lm`` and ``label``) and writes to OUT, each file atomically:

    cer_hypo.jsonl   id, cer_hypo (fraction), kept (bool), for every pseudo-labelled utterance
    pseudo.jsonl     the kept utterances as training rows: id, audio, duration, speaker, text (= the label), cer_hypo
    train.jsonl      the labelled manifest's rows, then pseudo.jsonl's: the student's data.train_manifest
    stats.json       the rule, counts and hours kept and dropped, mean CER-Hypo of each, the files used

A rule that keeps nothing stops with a message and writes nothing (:class:`asr.nst.filter.NothingKept`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.data.manifest import Manifest
from asr.nst.cer_hypo import cer_hypo
from asr.nst.filter import NothingKept, Selection, select
from asr.utils.io import atomic_write, read_jsonl, write_jsonl

ROW_KEYS = ("id", "audio", "duration", "speaker")


def pseudo_rows(hyps: list[dict], scores: dict[str, float], kept: list[str]) -> list[dict]:
    """Training rows of the kept utterances: the pseudo-label as ``text``, their CER-Hypo beside it."""
    by_id = {h["id"]: h for h in hyps}
    return [{**{k: by_id[u][k] for k in ROW_KEYS if k in by_id[u]}, "text": by_id[u]["label"], "cer_hypo": scores[u]}
            for u in kept]


def training_rows(labelled: str | Path, pseudo: list[dict]) -> list[dict]:
    """The labelled manifest's rows followed by the pseudo-labelled ones.

    Raises:
        ValueError: a pseudo-labelled id that is also a labelled one (the same utterance twice, or clashing ids).
    """
    rows = list(Manifest(labelled))  # checks every labelled row has id, audio, duration and text
    ids = {r["id"] for r in rows}
    if clash := [r["id"] for r in pseudo if r["id"] in ids]:
        raise ValueError(f"{len(clash)} pseudo-labelled ids are labelled ids too (e.g. {clash[:3]}); "
                         f"the unlabelled manifest must not hold {labelled}'s utterances")
    return rows + pseudo


def stats(hyps: list[dict], scores: dict[str, float], selection: Selection) -> dict:
    """Counts, hours and mean CER-Hypo of the kept and the dropped utterances."""
    seconds = {h["id"]: float(h["duration"]) for h in hyps}

    def part(ids: list[str]) -> dict:
        return {"utterances": len(ids), "hours": round(sum(seconds[u] for u in ids) / 3600, 4),
                "mean_cer_hypo": sum(scores[u] for u in ids) / len(ids) if ids else None}

    return {"rule": selection.rule, "pseudo_labelled": len(hyps), "kept": part(selection.kept),
            "dropped": part(selection.dropped)}


def build(hyps_path: str | Path, labelled: str | Path, out: str | Path, threshold: float | None = None,
          keep_best: float | None = None) -> dict:
    """Write the files of the module docstring; return the statistics written to ``stats.json``."""
    out = Path(out)
    hyps = list(read_jsonl(hyps_path))
    scores = cer_hypo({h["id"]: h["lm"] for h in hyps}, {h["id"]: h["plain"] for h in hyps})
    selection = select(scores, threshold, keep_best)  # NothingKept before any file is written
    pseudo = pseudo_rows(hyps, scores, selection.kept)
    train = training_rows(labelled, pseudo)
    kept = set(selection.kept)
    write_jsonl(out / "cer_hypo.jsonl", ({"id": u, "cer_hypo": s, "kept": u in kept} for u, s in scores.items()))
    write_jsonl(out / "pseudo.jsonl", pseudo)
    write_jsonl(out / "train.jsonl", train)
    record = {**stats(hyps, scores, selection), "threshold": threshold, "keep_best": keep_best,
              "labelled_utterances": len(train) - len(pseudo),
              "hyps": str(hyps_path), "labelled": str(labelled)}
    with atomic_write(out / "stats.json") as f:
        json.dump(record, f, ensure_ascii=False, indent=2)
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hyps", required=True, help="hyps.jsonl of python -m asr.nst.pseudo_label")
    p.add_argument("--labelled", required=True, help="the labelled training manifest")
    p.add_argument("--out", required=True)
    rule = p.add_mutually_exclusive_group(required=True)
    rule.add_argument("--threshold", type=float, help="keep CER-Hypo <= this (a fraction, e.g. 0.1)")
    rule.add_argument("--keep-best", type=float, help="keep this percentage of lowest CER-Hypo (100: all)")
    args = p.parse_args(argv)
    try:
        record = build(args.hyps, args.labelled, args.out, args.threshold, args.keep_best)
    except (NothingKept, ValueError, OSError) as e:
        sys.exit(f"asr.nst.manifests: {e}")
    k, d = record["kept"], record["dropped"]
    print(f"{record['rule']}: kept {k['utterances']} ({k['hours']:.2f} h), dropped {d['utterances']} "
          f"({d['hours']:.2f} h) of {record['pseudo_labelled']}; {args.out}/train.jsonl: "
          f"{record['labelled_utterances']} labelled + {k['utterances']} pseudo-labelled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
