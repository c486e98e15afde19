"""Train a model.

Usage:
    python -m asr.train experiment=demo                        # the synthetic-corpus demo on CPU
    python -m asr.train experiment=aishell_conformer trainer.devices=8
    python -m asr.train experiment=demo resume=last             # continue an interrupted run
    python -m asr.train experiment=demo logger=csv callbacks.rich_progress_bar=null

Compose config -> datamodule -> model -> callbacks, loggers (config groups ``callbacks``, ``logger``) -> Trainer;
fit; then test. Training imports nothing of decoding or export: evaluation after training is ``python -m
asr.evaluate`` (a recipe stage), and an ablation sweep composes the two in ``python -m asr.sweep``.
Returns the best validation CER, the metric a Hydra sweeper minimises.
"""
from __future__ import annotations

import logging
import os

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar

from asr.data.lengths import TrainingLengths
from asr.lit_module import ASRLitModule
from asr.model.registry import check_model_config
from asr.modelfile import make_meta
from asr.utils.threads import set_threads

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


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    _, trainer = fit(cfg)
    return best_val_cer(trainer)


def fit(cfg: DictConfig) -> tuple[ASRLitModule, pl.Trainer]:
    """Build everything from the config, train, then test with the best checkpoint (``test_after_fit``)."""
    pl.seed_everything(cfg.seed, workers=True)
    log.info("torch threads: %d", set_threads(cfg.threads))
    datamodule = instantiate(cfg.data, _partial_=True)(features=instantiate(cfg.features), augment=instantiate(cfg.augment))
    cfg.model.vocab_size = len(datamodule.tokenizer)
    model = instantiate(cfg.model)
    log.info("model: %.2fM parameters (encoder %.2fM, decoder %.2fM, ctc %.2fM)", model.num_params() / 1e6,
             *(sum(p.numel() for p in m.parameters()) / 1e6 for m in (model.encoder, model.decoder, model.ctc)))
    if cfg.get("compile"):
        model.encoder.compile()  # in place: parameter names, checkpoints and model files stay the same
    model_config = OmegaConf.to_container(cfg.model, resolve=True)
    check_model_config(model_config, "cfg.model")  # the model file must be loadable: fail now, not after training
    # the training lengths bound the segments inference feeds the model (asr-transcribe); from the manifest's durations
    train_manifest = cfg.data.get("train_manifest") or ""
    lengths = TrainingLengths.from_manifest(train_manifest) if os.path.isfile(train_manifest) else None
    meta = make_meta(model_config, datamodule.tokenizer, datamodule.features, datamodule.cmvn, lengths)
    module = ASRLitModule(model, datamodule.tokenizer, optimizer=instantiate(cfg.optim.optimizer),
                          scheduler=instantiate(cfg.optim.scheduler), sampling=instantiate(cfg.sampling), meta=meta)
    trainer = build_trainer(cfg, model)
    last = f"{cfg.exp_dir}/checkpoints/last.ckpt"
    # resume: "last" = last.ckpt; "auto" = last.ckpt if there is one (sweeps rerunning an unfinished run)
    ckpt = {"last": last, "auto": last if os.path.exists(last) else None}.get(cfg.resume, cfg.resume)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
    report_steps(cfg, trainer)
    if cfg.test_after_fit and cfg.data.test_manifest and not cfg.trainer.fast_dev_run:
        trainer.test(module, dataloaders=datamodule.test_dataloader(), ckpt_path="best", weights_only=True)
    return module, trainer


if __name__ == "__main__":
    main()
