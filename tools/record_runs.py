"""Keep the evidence of an ablation sweep in the repository: each finished run's small files, without its models.

Usage (from recipes/aishell, after a sweep or a run of one):
    python ../../tools/record_runs.py exp/ablation_v2_4800/augment records/ablation_v2_4800/augment \
        [--data data/demo_rt30]

``exp/`` holds models and does not travel (a new machine starts without it), yet the collector's tables, intervals
and verdicts need only each run's summaries and per-utterance error counts. This copies, for every run under SRC
whose ``metrics.json`` says ``ok``, into DEST at the same relative path:

* ``metrics.json`` (CER and counts per set and mode), ``.hydra/config.yaml`` and ``.hydra/overrides.yaml`` (what
  ran), ``csv/metrics.csv`` (the validation curves);
* every ``decode/SET/MODE/utterances.jsonl`` (per-utterance counts, what the paired bootstrap resamples) and
  ``decode/SET/MODE/text`` (the hypotheses), gzipped (``.gz``): about a tenth of the size;

and SRC's ``multirun.yaml`` (the sweep's arm order). Checkpoints, model files, logs and alignments stay behind.
``tools/collect_ablation.py DEST`` then gives the same tables as on SRC (it reads ``utterances.jsonl.gz`` where
``utterances.jsonl`` is absent), and a later session can set new runs against recorded ones
(``--baseline-from records/...``). ``--data``: also write ``DEST/manifests.sha256``, one SHA-256 per manifest
under that data folder, taken over its rows with each ``audio`` path replaced by the SHA-256 of the audio file's
bytes: it names the same utterances wherever the corpus lies, and changes when one sample of one recording does.
A later session that regenerated the data checks them before setting new runs against recorded ones::

    python ../../tools/record_runs.py --check data/demo_rt30 records/ablation_v2_4800/posenc   # exit 1: differ

A run that is unfinished or failed is listed on stderr and not recorded; a recorded run whose files changed is
overwritten (every file through a temporary name). Prints one line per run.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import sys
from pathlib import Path

from asr.evaluate import METRICS_FILE, read_metrics
from asr.utils.io import atomic_path, atomic_write, file_sha256, read_jsonl

PLAIN = ("metrics.json", ".hydra/config.yaml", ".hydra/overrides.yaml", "csv/metrics.csv")
GZIPPED = ("utterances.jsonl", "text")  # under decode/SET/MODE/


def copy_plain(src: Path, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def copy_gzipped(src: Path, dest: Path) -> None:
    """``src`` -> ``dest`` gzipped, with no name or time in the header: the same text gives the same bytes."""
    with atomic_write(dest, "wb") as f, gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as gz:
        gz.write(src.read_bytes())


def record_run(run_dir: Path, dest: Path) -> int:
    """Copy one run's small files to ``dest``; return how many files were written."""
    n = 0
    for rel in PLAIN:
        if (run_dir / rel).is_file():
            copy_plain(run_dir / rel, dest / rel)
            n += 1
    for name in GZIPPED:
        for path in sorted((run_dir / "decode").glob(f"*/*/{name}")):
            copy_gzipped(path, dest / path.relative_to(run_dir).with_name(name + ".gz"))
            n += 1
    return n


def manifest_digest(path: Path) -> str:
    """SHA-256 of a manifest's rows (keys sorted) with each ``audio`` path replaced by the audio file's SHA-256.

    Relative audio paths are resolved against the manifest's folder, as :class:`asr.data.manifest.Manifest` does.
    """
    h = hashlib.sha256()
    for row in read_jsonl(path):
        audio = path.parent / row["audio"]
        row["audio"] = file_sha256(audio)
        h.update((json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n").encode())
    return h.hexdigest()


def manifest_digests(data: Path) -> list[str]:
    """``digest  path`` lines (paths relative to ``data``) of every ``*.jsonl`` under it (:func:`manifest_digest`)."""
    return [f"{manifest_digest(path)}  {path.relative_to(data)}" for path in sorted(data.rglob("*.jsonl"))]


def check(data: Path, dest: Path) -> list[str]:
    """Compare ``data``'s manifests with ``dest/manifests.sha256``; return one line per difference (none: same)."""
    recorded = dict(line.split("  ", 1)[::-1] for line in (dest / "manifests.sha256").read_text().splitlines())
    now = dict(line.split("  ", 1)[::-1] for line in manifest_digests(data))
    return [f"{name}: {'missing from ' + str(data) if name not in now else 'not recorded' if name not in recorded else 'differs'}"
            for name in sorted(recorded.keys() | now.keys()) if recorded.get(name) != now.get(name)]


def record(src: Path, dest: Path, data: Path | None = None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Record every finished run under ``src``; return (recorded run folders, [(skipped folder, why)])."""
    recorded, skipped = [], []
    for path in sorted(src.rglob(METRICS_FILE)):
        run_dir = path.parent
        metrics = read_metrics(path)
        if metrics.get("status") != "ok":
            skipped.append((run_dir, f"status {metrics.get('status')!r}: {metrics.get('error', '')}".rstrip(": ")))
            continue
        n = record_run(run_dir, dest / run_dir.relative_to(src))
        recorded.append(run_dir)
        print(f"{run_dir} -> {dest / run_dir.relative_to(src)} ({n} files)")
    if not recorded and not skipped:
        raise ValueError(f"{src}: no {METRICS_FILE} found under it")
    if (src / "multirun.yaml").is_file():
        copy_plain(src / "multirun.yaml", dest / "multirun.yaml")
    if data is not None:
        with atomic_write(dest / "manifests.sha256") as f:
            f.write("".join(line + "\n" for line in manifest_digests(data)))
    return recorded, skipped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="a sweep folder (exp/ROOT/NAME) or any folder of runs; "
                                          "with --check, the data folder")
    p.add_argument("dest", type=Path, help="where the record goes (same layout)")
    p.add_argument("--data", type=Path, help="the data folder the runs decoded: write DEST/manifests.sha256")
    p.add_argument("--check", action="store_true", help="only compare the data folder SRC with DEST/manifests.sha256")
    args = p.parse_args(argv)
    try:
        if args.check:
            differences = check(args.src, args.dest)
            for line in differences:
                print(f"record_runs: {line}", file=sys.stderr)
            print(f"{args.src}: {'differs from' if differences else 'the same data as'} {args.dest}", file=sys.stderr)
            return 1 if differences else 0
        recorded, skipped = record(args.src, args.dest, args.data)
    except (OSError, ValueError, KeyError) as e:
        print(f"record_runs: {e}", file=sys.stderr)
        return 1
    for run_dir, why in skipped:
        print(f"not recorded: {run_dir} ({why})", file=sys.stderr)
    print(f"{len(recorded)} runs recorded, {len(skipped)} not", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
