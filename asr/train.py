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
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from asr.data.lengths import TrainingLengths
from asr.lit_module import ASRLitModule
from asr.model.registry import check_model_config
from asr.modelfile import make_meta
from asr.trainer import best_val_cer, build_trainer, report_steps
from asr.utils.threads import set_threads

log = logging.getLogger(__name__)


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
                          scheduler=instantiate(cfg.optim.scheduler), sampling=instantiate(cfg.sampling), meta=meta,
                          val_chunk_size=cfg.val_chunk_size)
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
