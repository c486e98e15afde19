"""Evaluate a finished training run: average its best checkpoints, decode dev and test, write ``metrics.json``.

Usage:
    python -m asr.evaluate exp_dir=exp/demo
    python -m asr.evaluate exp_dir=exp/demo evaluate.modes=[ctc_greedy_search,attention_rescoring] evaluate.average_num=5

Training (:mod:`asr.train`) imports nothing of decoding; this is the step after it, run by a recipe or by an
ablation sweep (:mod:`asr.sweep` composes the two in one job). It reads the run's own config as Hydra saved it
(``EXP_DIR/.hydra/config.yaml``: the dev and test manifests, the sweep's name and arm), its checkpoints
(``EXP_DIR/checkpoints``) and its CSV log (``EXP_DIR/csv/metrics.csv``), and writes

* ``EXP_DIR/model.safetensors``: the average of the best ``evaluate.average_num`` checkpoints by validation CER;
* ``EXP_DIR/decode/SPLIT/MODE/``: :func:`asr.decode.decode_manifest`'s files (``utterances.jsonl``: the
  per-utterance error counts a paired bootstrap resamples), for dev, test and every set of ``evaluate.test_sets``
  (name -> manifest; a relative path is taken from the run's ``data_dir``, e.g. the test conditions of
  tools/make_test_conditions.py, listed by ``conf/evaluate/conditions.yaml``). Each ``summary.json`` also names the
  model's SHA-256 and the batching; an evaluation run again after an interruption keeps every set whose modes all
  finished with the same model bytes, manifest, batching and search (:func:`earlier_decode`), and decodes the rest;
* ``EXP_DIR/metrics.json`` (atomically)::

      status            "ok" | "failed" | "interrupted"
      error, traceback  what went wrong (not "ok" only)
      name, arm, seed   the sweep (ablation.name), the arm (ablation.arm, else the run folder's parent's name), seed
      cer               {"dev": {mode: CER}, "test": {mode: CER}, TEST_SET: {mode: CER}...}, CER as a fraction
                        ("ok" only)
      counts            the same splits and modes: {substitutions, deletions, insertions, ref_chars} and, for a set
                        with focus characters, focus: {cer, substitutions, deletions, insertions, ref_chars}
      num_params        parameters of the model
      steps, epochs     optimizer steps and epochs trained (the last checkpoint)
      train_seconds     wall seconds of the training loop, summed over resumed parts (Lightning's Timer)
      audio_seconds_per_second   training throughput of the last (or only) training part: the feature frames and
                                 seconds Lightning's ThroughputMonitor counted, times the frame shift and the
                                 number of devices
      averaged          the averaged checkpoints: file, step, validation CER (null in a decoding sweep)
      model_from        a decoding sweep's job only: the model file it decoded (``evaluate_run(model_file=...)``)
      config            the run's config file (EXP_DIR/.hydra/config.yaml)
      git               {"commit", "dirty"} of the code that ran (null outside a git checkout)
      machine           where decoding ran
      finished_at       UTC time
"""
from __future__ import annotations

import contextlib
import csv
import datetime
import json
import logging
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Iterator

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from asr.average import average_to_model_file, read_checkpoint, select
from asr.decode import SETTINGS, decode_manifest, machine_info
from asr.inference.recognizer import Recognizer
from asr.utils.io import atomic_write, file_sha256
from asr.utils.threads import set_threads
from asr.utils.untrusted import parse_json

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"
RUN_CONFIG = Path(".hydra") / "config.yaml"
COUNT_KEYS = ("substitutions", "deletions", "insertions", "ref_chars", "focus")  # of a decoding summary
ROOT = Path(__file__).resolve().parents[1]


def read_metrics(path: str | Path) -> dict:
    """``metrics.json`` as a dict; ValueError naming the file when it is not JSON."""
    return parse_json(Path(path).read_text(encoding="utf-8"), str(path))


def finished(exp_dir: str | Path) -> bool:
    """True (and says so) when ``EXP_DIR/metrics.json`` has status ``ok``: a sweep skips the run."""
    path = Path(exp_dir) / METRICS_FILE
    if not path.exists():
        return False
    try:
        status = read_metrics(path).get("status")
    except ValueError as e:
        log.warning("%s; running again", e)
        return False
    if status == "ok":
        print(f"{exp_dir}: finished already ({path} has status ok), skipping", flush=True)
        return True
    log.info("%s has status %r: running again", path, status)
    return False


def run_config(exp_dir: str | Path) -> DictConfig:
    """The training run's config as Hydra saved it (interpolations unresolved)."""
    path = Path(exp_dir) / RUN_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; is {exp_dir} a training run's folder (python -m asr.train)?")
    return OmegaConf.load(path)


def select_value(cfg: DictConfig, key: str):
    """``cfg.key`` resolved, or None when it is absent or cannot be resolved outside the run (``${hydra:...}``)."""
    try:
        return OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
    except Exception:  # an interpolation that needs the run's Hydra context
        return None


def identity(cfg: DictConfig, exp_dir: Path) -> dict:
    """The fields naming a run: sweep name, arm and seed."""
    arm = select_value(cfg, "ablation.arm")
    return {"name": select_value(cfg, "ablation.name"), "arm": arm if arm is not None else exp_dir.parent.name,
            "seed": select_value(cfg, "seed")}


def git_state() -> dict | None:
    """``{"commit", "dirty"}`` of the checkout holding this package (read-only git commands), or None."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "diff-index", "--quiet", "HEAD", "--"],
                               capture_output=True, timeout=30).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def training_record(exp_dir: Path, frame_shift_ms: float) -> dict:
    """Steps, epochs, training seconds and throughput of a run, from its last checkpoint and its CSV log."""
    record: dict = {"steps": None, "epochs": None, "train_seconds": None, "audio_seconds_per_second": None}
    last, world_size = exp_dir / "checkpoints" / "last.ckpt", 1
    if last.exists():
        ckpt = read_checkpoint(last)
        record.update(steps=ckpt.get("global_step"), epochs=ckpt.get("epoch"))
        world_size = (ckpt.get("asr") or {}).get("world_size") or 1
        timers = [s for k, s in (ckpt.get("callbacks") or {}).items() if k.startswith("Timer")]
        if timers:
            record["train_seconds"] = timers[0]["time_elapsed"].get("train")
    log_file = exp_dir / "csv" / "metrics.csv"
    if log_file.exists():
        with open(log_file, encoding="utf-8", newline="") as f:
            # ThroughputMonitor's running totals on rank 0: frames ("lengths") and seconds of the training loop
            rows = [r for r in csv.DictReader(f) if r.get("train|lengths") and r.get("train|time")]
        if rows and float(rows[-1]["train|time"]) > 0:
            frames_per_second = float(rows[-1]["train|lengths"]) / float(rows[-1]["train|time"]) * world_size
            record["audio_seconds_per_second"] = frames_per_second * frame_shift_ms / 1000
    return record


def write_metrics(exp_dir: Path, cfg: DictConfig, fields: dict) -> Path:
    """Write ``metrics.json`` (identity, git state, time and the config file's path added) atomically."""
    path = exp_dir / METRICS_FILE
    record = {**fields, **identity(cfg, exp_dir), "config": str(RUN_CONFIG), "git": git_state(),
              "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with atomic_write(path) as f:
        json.dump(record, f, ensure_ascii=False, indent=2)
    return path


@contextlib.contextmanager
def recorded(exp_dir: str | Path, cfg: DictConfig) -> Iterator[None]:
    """Run the block; if it raises, write ``metrics.json`` with the error and re-raise.

    Args:
        exp_dir: the run's folder.
        cfg: the run's config.
    """
    try:
        yield
    except BaseException as error:
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        exp_dir = Path(exp_dir)
        fields = {"status": status, "error": f"{type(error).__name__}: {error}", "traceback": tb[-4000:]}
        with contextlib.suppress(Exception):  # what training got done, if its files say
            fields.update(training_record(exp_dir, float(select_value(cfg, "features.frame_shift_ms") or 10.0)))
        path = write_metrics(exp_dir, cfg, fields)
        log.error("run %s: %s (%s)", status, error, path)
        raise


def evaluation_sets(settings: DictConfig, cfg: DictConfig) -> dict[str, Path]:
    """Name -> manifest of every set to decode: the run's dev and test, then ``settings.test_sets``.

    A relative test-set path is taken from the run's ``data_dir`` (else the working directory).

    Raises:
        ValueError: a test set named dev or test, or a test-set manifest that does not exist (checked before a
            sweep trains, so that a typo does not cost a training run).
    """
    sets = {}
    for split, key in (("dev", "data.val_manifest"), ("test", "data.test_manifest")):
        if manifest := select_value(cfg, key):
            sets[split] = Path(manifest)
    data_dir = Path(select_value(cfg, "data_dir") or ".")
    missing = []
    for name, manifest in (settings.get("test_sets") or {}).items():
        if name in ("dev", "test"):
            raise ValueError(f"evaluate.test_sets: {name!r} is the run's own {name} set; give the set another name")
        path = Path(manifest) if Path(manifest).is_absolute() else data_dir / manifest
        if not path.is_file():
            missing.append(f"{name}: {path}")
        sets[name] = path
    if missing:
        raise ValueError("evaluate.test_sets: no such manifest: " + "; ".join(missing)
                         + " (tools/make_test_conditions.py makes the test conditions; recipes/aishell/run.sh stage 9)")
    return sets


def evaluate_run(exp_dir: str | Path, settings: DictConfig, cfg: DictConfig | None = None,
                 model_file: str | Path | None = None) -> dict:
    """Average the best checkpoints, decode dev, test and the test sets, write ``metrics.json`` with status ``ok``.

    Args:
        exp_dir: the training run's folder.
        settings: ``conf/evaluate/default.yaml``: ``modes``, ``test_sets``, ``average_num``, ``device`` (``auto``:
            CUDA when available), ``batch_frames``, ``threads`` and ``search`` (keyword arguments of
            :class:`asr.inference.recognizer.Recognizer`, e.g. ``beam``).
        cfg: the run's config (default: read from ``EXP_DIR/.hydra/config.yaml``).
        model_file: decode this model file instead of averaging the run's checkpoints (a decoding sweep: the run
            folder holds decodes only; ``averaged`` is null and ``model_from`` names the file).

    Returns:
        The record written.
    """
    exp_dir = Path(exp_dir)
    cfg = run_config(exp_dir) if cfg is None else cfg
    modes = list(settings.modes)
    sets = evaluation_sets(settings, cfg)
    set_threads(settings.get("threads"))
    if model_file is None:
        chosen = select(exp_dir / "checkpoints", int(settings.average_num), "best")
        model_file = exp_dir / "model.safetensors"
        average_to_model_file(chosen, model_file)
        log.info("averaged %d checkpoint(s) -> %s", len(chosen), model_file)
        source = {"averaged": [{"checkpoint": c.path.name, "step": c.step, "val_cer": c.val_cer} for c in chosen]}
    else:
        source = {"averaged": None, "model_from": str(model_file)}

    device = settings.get("device") or "auto"
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    rec = Recognizer.from_model_file(model_file, device, **(settings.get("search") or {}))
    rec.check_modes(modes)
    batch_frames = int(settings.get("batch_frames") or 20000)
    info = {"model": str(model_file), "model_sha256": file_sha256(model_file), "batch_frames": batch_frames}
    cer, counts = {}, {}
    for split, manifest in sets.items():
        out = exp_dir / "decode" / split
        if summaries := earlier_decode(rec, manifest, out, modes, info):
            log.info("%s: kept the decode an interrupted evaluation finished (same model, manifest and search)", split)
        else:
            summaries = decode_manifest(rec, manifest, out, modes, batch_frames=batch_frames, progress=False, info=info)
        cer[split] = {mode: s["cer"] for mode, s in summaries.items()}
        counts[split] = {mode: {k: s[k] for k in COUNT_KEYS if k in s} for mode, s in summaries.items()}
        log.info("%s CER: %s", split, ", ".join(f"{m} {100 * c:.2f}%" for m, c in cer[split].items()))
    record = {"status": "ok", "cer": cer, "counts": counts,
              "num_params": sum(p.numel() for p in rec.backend.model.parameters()),
              **training_record(exp_dir, float(select_value(cfg, "features.frame_shift_ms") or 10.0)),
              **source, "machine": machine_info(torch.device(device))}
    path = write_metrics(exp_dir, cfg, record)
    log.info("metrics -> %s", path)
    return record


def earlier_decode(rec: Recognizer, manifest: Path, out_dir: Path, modes: list[str], info: dict) -> dict | None:
    """The summaries an earlier, interrupted evaluation wrote to ``out_dir`` for every mode, if they are of this model
    (by content), manifest, batching and search settings; else None (decode again).

    ``summary.json`` is a mode's last file (written through a temporary name), so a mode that has one is complete;
    a set that lacks one mode is decoded again in every mode (the encoder runs once for all of them).
    """
    expected = {**info, "manifest": str(manifest), "settings": {k: getattr(rec, k) for k in SETTINGS}}
    summaries = {}
    for mode in modes:
        path = out_dir / mode / "summary.json"
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if any(summary.get(k) != v for k, v in expected.items()):
            return None
        summaries[mode] = summary
    return summaries


@hydra.main(config_path="../conf", config_name="evaluation", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Evaluate ``cfg.exp_dir``; returns the dev CER of the first mode (what a Hydra sweeper would minimise)."""
    try:
        record = evaluate_run(cfg.exp_dir, cfg.evaluate)
    except (ValueError, OSError) as e:
        sys.exit(f"asr.evaluate: {e}")
    for split, cers in record["cer"].items():
        print(f"{split}: " + ", ".join(f"{mode} {100 * c:.2f}%" for mode, c in cers.items()))
    first = list(cfg.evaluate.modes)[0]
    return record["cer"].get("dev", {}).get(first)


if __name__ == "__main__":
    main()
