"""Train a model.

Usage:
    python -m asr.train experiment=demo                        # the synthetic-corpus demo on CPU
    python -m asr.train experiment=aishell_conformer trainer.devices=8
    python -m asr.train experiment=demo resume=last             # continue an interrupted run
    python -m asr.train -m +ablation=focal data_dir=...         # an ablation sweep (conf/ablation/, run_ablation.sh)

Compose config -> datamodule -> model -> callbacks, logger -> Trainer; fit; then test.
"""
from __future__ import annotations

import logging
import os

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from asr import run_metrics
from asr.lit_module import ASRLitModule
from asr.modelfile import make_meta

log = logging.getLogger(__name__)


def build_trainer(cfg: DictConfig, extra_callbacks: list[pl.Callback] = ()) -> pl.Trainer:
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    if kwargs["precision"] == "auto":
        kwargs["precision"] = "bf16-mixed" if torch.cuda.is_available() else "32-true"
    ckpt_dir = f"{cfg.exp_dir}/checkpoints"
    callbacks = [
        ModelCheckpoint(ckpt_dir, filename="best-{epoch}-{step}", monitor="val/cer", mode="min",
                        save_top_k=cfg.num_checkpoints, auto_insert_metric_name=False),
        # saved at the end of every training epoch and when training stops (max_steps, max_time), whether or not a
        # validation ran since: with step-based validation (check_val_every_n_epoch: null) the last steps are kept
        ModelCheckpoint(ckpt_dir, filename="last-{epoch}-{step}", monitor="step", mode="max",
                        save_top_k=cfg.num_checkpoints, save_last=True, save_on_train_epoch_end=True),
        LearningRateMonitor("step"),
        *extra_callbacks,
    ]
    if kwargs.get("enable_progress_bar", True):
        callbacks.append(RichProgressBar())
    loggers = [TensorBoardLogger(cfg.exp_dir, name="tensorboard", version=""), CSVLogger(cfg.exp_dir, name="csv", version="")]
    return pl.Trainer(**kwargs, callbacks=callbacks, logger=loggers, default_root_dir=cfg.exp_dir)


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    # Run metrics (asr/run_metrics.py), active only when cfg.evaluate lists decoding modes (the ablation sweeps):
    # skip a run already finished; a failure leaves metrics.json with the error; after training, average, decode
    # dev and test and write metrics.json.
    if run_metrics.finished(cfg):
        return
    meter = run_metrics.TrainingMeter(cfg.features.frame_shift_ms)
    with run_metrics.recorded(cfg, meter):
        module, trainer = fit(cfg, extra_callbacks=[meter])
        run_metrics.evaluate_run(cfg, module.model, trainer, meter)


def fit(cfg: DictConfig, extra_callbacks: list[pl.Callback] = ()) -> tuple[ASRLitModule, pl.Trainer]:
    """Build everything from the config, train, then test with the best checkpoint (``test_after_fit``)."""
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    datamodule = instantiate(cfg.data, _partial_=True)(features=instantiate(cfg.features), augment=instantiate(cfg.augment))
    cfg.model.vocab_size = len(datamodule.tokenizer)
    model = instantiate(cfg.model)
    log.info("model: %.2fM parameters (encoder %.2fM, decoder %.2fM, ctc %.2fM)", model.num_params() / 1e6,
             *(sum(p.numel() for p in m.parameters()) / 1e6 for m in (model.encoder, model.decoder, model.ctc)))
    meta = make_meta(OmegaConf.to_container(cfg.model, resolve=True), datamodule.tokenizer, datamodule.features, datamodule.cmvn)
    module = ASRLitModule(model, datamodule.tokenizer, optimizer=instantiate(cfg.optim.optimizer),
                          scheduler=instantiate(cfg.optim.scheduler), sampling=instantiate(cfg.sampling), meta=meta)
    trainer = build_trainer(cfg, extra_callbacks)
    last = f"{cfg.exp_dir}/checkpoints/last.ckpt"
    # resume: "last" = last.ckpt; "auto" = last.ckpt if there is one (sweeps rerunning an unfinished run)
    ckpt = {"last": last, "auto": last if os.path.exists(last) else None}.get(cfg.resume, cfg.resume)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)
    if cfg.test_after_fit and cfg.data.test_manifest and not cfg.trainer.fast_dev_run:
        trainer.test(module, dataloaders=datamodule.test_dataloader(), ckpt_path="best")
    return module, trainer


if __name__ == "__main__":
    main()
