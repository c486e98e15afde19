"""The Lightning Trainer of a training config: callbacks and loggers from their config groups, the precision and
the DDP strategy chosen for the machine, and what the run reports at the end."""
from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar

log = logging.getLogger(__name__)


def build_trainer(cfg: DictConfig, model=None) -> pl.Trainer:
    """The Trainer of ``cfg.trainer`` with the callbacks and loggers of the ``callbacks`` and ``logger`` groups.

    A null entry in a group switches that callback or logger off. Progress bars are left out when
    ``trainer.enable_progress_bar`` is false (Lightning refuses both at once). With ``model``, DDP is told to expect
    parameters without gradients when the model has some (:func:`ddp_strategy`).
    """
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    if model is not None and (strategy := ddp_strategy(cfg, model)):
        kwargs["strategy"] = strategy
    if kwargs["precision"] == "auto":
        kwargs["precision"], why = auto_precision(kwargs.get("accelerator", "auto"))
        log.info("precision auto -> %s (%s)", kwargs["precision"], why)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    if not kwargs.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    return pl.Trainer(**kwargs, callbacks=callbacks, logger=loggers or False, default_root_dir=cfg.exp_dir)


def auto_precision(accelerator: str) -> tuple[str, str]:
    """Precision for ``trainer.precision=auto``, and why: bf16 where the GPU computes it natively (compute
    capability 8.0 and up: A100, H100, RTX 30xx/40xx), fp16 with gradient scaling on older GPUs (V100, T4, where
    bf16 is emulated and slow), 32-bit on CPU."""
    if accelerator == "cpu" or not torch.cuda.is_available():
        return "32-true", "no GPU" if accelerator != "cpu" else "trainer.accelerator=cpu"
    major, minor = torch.cuda.get_device_capability()
    name = torch.cuda.get_device_name()
    if (major, minor) >= (8, 0):
        return "bf16-mixed", f"{name}, compute capability {major}.{minor}: native bf16"
    return "16-mixed", f"{name}, compute capability {major}.{minor}: no native bf16, fp16 with gradient scaling"


def requested_devices(devices, accelerator: str) -> int:
    """How many devices a Trainer's ``devices`` argument asks for (int, "2", "0,1", [0, 1], "auto" or -1)."""
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices).strip()
    if text in ("auto", "-1"):
        return torch.cuda.device_count() if accelerator != "cpu" and torch.cuda.is_available() else 1
    if "," in text:
        return len([d for d in text.split(",") if d.strip()])
    return int(text)


def ddp_strategy(cfg: DictConfig, model) -> str | None:
    """``ddp_find_unused_parameters_true`` when training would run on several devices and the model has parts no
    loss reaches (``ASRModel.unused_modules``: DDP's all-reduce would wait for their gradients forever), else None."""
    if cfg.trainer.strategy != "auto" or not model.unused_modules():
        return None
    if requested_devices(cfg.trainer.devices, cfg.trainer.accelerator) * cfg.trainer.num_nodes <= 1:
        return None
    log.info("the model's %s get no gradient with these loss weights: DDP with find_unused_parameters=True",
             ", ".join(model.unused_modules()))
    return "ddp_find_unused_parameters_true"


def best_val_cer(trainer: pl.Trainer) -> float | None:
    """The best validation CER any checkpoint callback monitoring ``val/cer`` saw (None without validation)."""
    for c in trainer.checkpoint_callbacks:
        if isinstance(c, ModelCheckpoint) and c.monitor == "val/cer" and c.best_model_score is not None:
            return float(c.best_model_score)
    cer = trainer.callback_metrics.get("val/cer")
    return float(cer) if cer is not None else None


def report_steps(cfg: DictConfig, trainer: pl.Trainer) -> None:
    """Say how many optimizer steps were trained, and loudly when a time limit cut the step budget short."""
    budget = cfg.trainer.max_steps
    message = f"trained {trainer.global_step} optimizer steps ({trainer.current_epoch + 1} epochs)"
    if budget and budget > 0:
        message += f" of trainer.max_steps={budget}"
        if trainer.global_step < budget and not trainer.interrupted:
            message += (f"; STOPPED EARLY by trainer.max_time={cfg.trainer.max_time}: the model is not the recipe's "
                        "(raise or remove trainer.max_time on a slow machine)")
    log.info(message)
    if trainer.is_global_zero:
        print(message, flush=True)
