"""One training run's outcome as ``EXP_DIR/metrics.json``: what an ablation sweep collects.

Active only when the config's ``evaluate`` lists decoding modes (the ablation sweeps of ``conf/ablation/`` set it;
plain runs leave it null and nothing here writes anything). ``asr/train.py`` then

1. skips the run at once when :func:`finished` (``metrics.json`` with status ``ok`` exists), so that rerunning an
   interrupted sweep does not redo finished runs;
2. trains inside :func:`recorded`, which turns any error (training, averaging, decoding) into ``metrics.json`` with
   status ``failed`` (``interrupted`` for Ctrl-C) and the error, then re-raises it;
3. calls :func:`evaluate_run`: average the best ``evaluate.average_num`` checkpoints (by validation CER) into
   ``EXP_DIR/model.safetensors`` (:mod:`asr.average`), decode dev and test in ``evaluate.modes`` into
   ``EXP_DIR/decode/SPLIT/MODE/`` (:func:`asr.decode.decode_manifest`), and write ``metrics.json``.

``metrics.json`` (written atomically) holds::

    status            "ok" | "failed" | "interrupted"
    error, traceback  what went wrong (not "ok" only)
    name, arm, seed   the sweep (cfg.ablation.name), the arm (cfg.ablation.arm, else the run folder's parent's
                      name) and the seed
    cer               {"dev": {mode: CER}, "test": {mode: CER}}, CER as a fraction ("ok" only)
    num_params        parameters of the model
    train_seconds     wall seconds of the training loop (validation included), summed over resumed parts
    train_audio_seconds        audio seconds of the training batches (feature frames x frame shift, after
                               speed perturbation: what the model saw), summed over resumed parts
    audio_seconds_per_second   train_audio_seconds / train_seconds
    steps, epochs     optimizer steps and epochs done
    averaged          the averaged checkpoints: file, step, validation CER
    git               {"commit", "dirty"} of the code that ran (null outside a git checkout)
    machine, config   where it ran; the resolved config
    finished_at       UTC time
"""
from __future__ import annotations

import contextlib
import datetime
import json
import logging
import subprocess
import time
import traceback
from pathlib import Path
from typing import Iterator

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_only

from asr.average import average_states, model_state, select
from asr.decode import decode_manifest, machine_info
from asr.inference.recognizer import Recognizer, check_modes
from asr.modelfile import save_model_file
from asr.utils.io import atomic_write

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"
ROOT = Path(__file__).resolve().parents[1]


class TrainingMeter(pl.Callback):
    """Wall time and audio seconds of the training loop; saved in checkpoints, so a resumed run adds up.

    Audio seconds are counted from the batches' feature lengths (``feats_lens: (B,) int64``) times the frame
    shift. With several processes (DDP) rank 0's count is multiplied by the number of processes: the batch
    sampler gives every rank the same frame budget.

    Args:
        frame_shift_ms: hop of the features in milliseconds.
    """

    def __init__(self, frame_shift_ms: float):
        self.frame_shift = frame_shift_ms / 1000.0
        self.audio_seconds, self.seconds = 0.0, 0.0
        self.world_size, self.steps, self.epochs = 1, 0, 0
        self.started: float | None = None
        self.exception: BaseException | None = None

    def elapsed(self) -> float:
        """Training wall seconds so far, the running part included."""
        return self.seconds + (time.perf_counter() - self.started if self.started is not None else 0.0)

    def total_audio_seconds(self) -> float:
        return self.audio_seconds * self.world_size

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.world_size = trainer.world_size
        self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch: dict, batch_idx: int) -> None:
        self.audio_seconds += float(batch["feats_lens"].sum()) * self.frame_shift
        self.steps, self.epochs = trainer.global_step, trainer.current_epoch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds, self.started = self.elapsed(), None
        self.steps, self.epochs = trainer.global_step, trainer.current_epoch

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # Lightning turns Ctrl-C into SystemExit(1) after this hook: keep what really happened
        self.exception = exception
        if self.started is not None:
            self.seconds, self.started = self.elapsed(), None

    def state_dict(self) -> dict:
        return {"seconds": self.elapsed(), "audio_seconds": self.audio_seconds}

    def load_state_dict(self, state: dict) -> None:
        self.seconds, self.audio_seconds = state["seconds"], state["audio_seconds"]


def enabled(cfg: DictConfig) -> bool:
    """Whether the run records metrics: ``cfg.evaluate`` set, with a non-empty ``modes`` list."""
    evaluate = OmegaConf.select(cfg, "evaluate", default=None)
    return bool(evaluate) and bool(evaluate.get("modes"))


def metrics_path(cfg: DictConfig) -> Path:
    return Path(cfg.exp_dir) / METRICS_FILE


def read_metrics(path: str | Path) -> dict:
    """``metrics.json`` as a dict; ValueError naming the file when it is not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a JSON metrics file ({e.msg})") from None


def finished(cfg: DictConfig) -> bool:
    """True (and says so) when metrics are recorded and ``metrics.json`` has status ``ok``: skip the run."""
    path = metrics_path(cfg)
    if not enabled(cfg) or not path.exists():
        return False
    try:
        status = read_metrics(path).get("status")
    except ValueError as e:
        log.warning("%s; running again", e)
        return False
    if status == "ok":
        message = f"{cfg.exp_dir}: finished already ({path} has status ok), skipping"
        print(message, flush=True)
        log.info(message)
        return True
    log.info("%s has status %r: running again", path, status)
    return False


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


def identity(cfg: DictConfig) -> dict:
    """The fields naming a run: sweep name, arm and seed."""
    arm = OmegaConf.select(cfg, "ablation.arm", default=None, throw_on_missing=False)
    return {"name": OmegaConf.select(cfg, "ablation.name", default=None, throw_on_missing=False),
            "arm": arm if arm is not None else Path(cfg.exp_dir).parent.name, "seed": cfg.seed}


def unset_keys(node: DictConfig | ListConfig, prefix: str = "") -> Iterator[str]:
    """Dotted keys of the values that are "???" (read without resolving any interpolation)."""
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        path = f"{prefix}{key}"
        if OmegaConf.is_missing(node, key):
            yield path
            continue
        child = node._get_node(key)
        if isinstance(child, (DictConfig, ListConfig)) and not child._is_none() and not child._is_interpolation():
            yield from unset_keys(child, f"{path}.")


def resolved_config(cfg: DictConfig) -> dict:
    """The config with interpolations resolved; values still unset ("???", e.g. the vocabulary size of a run that
    failed early) become null. Unresolved if resolving fails (the failure may be in the config itself)."""
    cfg = cfg.copy()
    with open_dict(cfg):
        for key in list(unset_keys(cfg)):
            OmegaConf.update(cfg, key, None)
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation that cannot be resolved: record the config as written
        return OmegaConf.to_container(cfg, resolve=False)


def write_metrics(cfg: DictConfig, fields: dict) -> Path:
    """Write ``metrics.json`` (identity, git state, time and config added) atomically; return its path."""
    path = metrics_path(cfg)
    record = {**fields, **identity(cfg), "git": git_state(),
              "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "config": resolved_config(cfg)}
    with atomic_write(path) as f:
        json.dump(record, f, ensure_ascii=False, indent=2)
    return path


def training_fields(meter: TrainingMeter) -> dict:
    seconds, audio = meter.elapsed(), meter.total_audio_seconds()
    return {"train_seconds": seconds, "train_audio_seconds": audio,
            "audio_seconds_per_second": audio / seconds if seconds > 0 else None,
            "steps": meter.steps, "epochs": meter.epochs}


@contextlib.contextmanager
def recorded(cfg: DictConfig, meter: TrainingMeter) -> Iterator[None]:
    """Run the block; if it raises, write ``metrics.json`` with the error (rank 0) and re-raise.

    Args:
        cfg: the run's config (nothing is written unless :func:`enabled`).
        meter: the run's training meter (time, audio and steps of a failed run too).
    """
    if not enabled(cfg):
        yield
        return
    try:
        yield
    except BaseException as e:
        if rank_zero_only.rank == 0:
            error = meter.exception if isinstance(e, SystemExit) and meter.exception is not None else e
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            path = write_metrics(cfg, {"status": status, "error": f"{type(error).__name__}: {error}",
                                       "traceback": tb[-4000:], **training_fields(meter)})
            log.error("run %s: %s (%s)", status, error, path)
        raise


def evaluate_run(cfg: DictConfig, model: torch.nn.Module, trainer: pl.Trainer, meter: TrainingMeter) -> dict | None:
    """Average the best checkpoints, decode dev and test, write ``metrics.json`` with status ``ok``.

    Nothing is done (None returned) unless :func:`enabled`, nor on ranks other than 0.

    Args:
        cfg: the run's config; ``cfg.evaluate`` holds ``modes``, ``average_num``, and optionally ``device``
            (``auto``: CUDA when available), ``batch_frames`` and ``search`` (keyword arguments of
            :class:`asr.inference.recognizer.Recognizer`, e.g. ``beam``).
        model: the trained model (for its parameter count).
        trainer: the Trainer that ran the fit.
        meter: the fit's :class:`TrainingMeter`.

    Returns:
        The record written.
    """
    if not enabled(cfg) or not trainer.is_global_zero:
        return None
    if trainer.interrupted:
        raise KeyboardInterrupt("training was interrupted")
    evaluate = cfg.evaluate
    modes = list(evaluate.modes)
    check_modes(modes)
    exp_dir = Path(cfg.exp_dir)
    chosen = select(exp_dir / "checkpoints", int(evaluate.average_num), "best")
    model_file = exp_dir / "model.safetensors"
    save_model_file(model_file, average_states([model_state(c) for _, c in chosen]), json.loads(chosen[0][1]["asr"]["meta"]))
    log.info("averaged %d checkpoint(s) -> %s", len(chosen), model_file)

    device = evaluate.get("device") or "auto"
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    rec = Recognizer.from_model_file(model_file, device, **(evaluate.get("search") or {}))
    splits = {"dev": cfg.data.val_manifest, "test": cfg.data.test_manifest}
    cer = {}
    for split, manifest in splits.items():
        if not manifest:
            continue
        summaries = decode_manifest(rec, manifest, exp_dir / "decode" / split, modes,
                                    batch_frames=int(evaluate.get("batch_frames") or 20000), progress=False,
                                    info={"model": str(model_file)})
        cer[split] = {mode: s["cer"] for mode, s in summaries.items()}
        log.info("%s CER: %s", split, ", ".join(f"{m} {100 * c:.2f}%" for m, c in cer[split].items()))
    averaged = [{"checkpoint": path.name, "step": ckpt.get("global_step"), "val_cer": ckpt.get("asr", {}).get("val_cer")}
                for path, ckpt in chosen]
    record = {"status": "ok", "cer": cer, "num_params": sum(p.numel() for p in model.parameters()),
              **training_fields(meter), "averaged": averaged, "machine": machine_info(torch.device(device))}
    path = write_metrics(cfg, record)
    log.info("metrics -> %s", path)
    return record
