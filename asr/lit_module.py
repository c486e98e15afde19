"""The LightningModule: thin. The networks are built from config and passed in; one shared step."""
from __future__ import annotations

import json
import logging
import math
from typing import Callable

import pytorch_lightning as pl
import torch
from torchmetrics.text import CharErrorRate

from asr.decoding.ctc_greedy import ctc_greedy_search
from asr.model.asr_model import ASRModel
from asr.model.scheduled_sampling import SamplingSchedule
from asr.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class ASRLitModule(pl.LightningModule):
    """Trains an :class:`ASRModel` with the joint CTC/attention loss.

    Args:
        model: the network (encoder, CTC head, decoder, losses).
        tokenizer: turns ids into text for the validation CER.
        optimizer: partial ``params -> Optimizer``.
        scheduler: partial ``optimizer -> LRScheduler`` stepped every optimizer step, or None.
        sampling: scheduled-sampling schedule, or None for plain teacher forcing.
        max_bad_batches: stop after this many consecutive batches with a NaN/inf loss.
        meta: JSON-serialisable facts stored in every checkpoint (model config, features, CMVN, tokenizer),
            so that a checkpoint alone can become a model file.
    """

    flops_per_batch = None  # read by Lightning's ThroughputMonitor: FLOPs are not counted, only samples and frames

    def __init__(self, model: ASRModel, tokenizer: Tokenizer, optimizer: Callable, scheduler: Callable | None = None,
                 sampling: SamplingSchedule | None = None, max_bad_batches: int = 20, meta: dict | None = None):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.sampling, self.max_bad_batches, self.meta = sampling, max_bad_batches, meta or {}
        self.cer = torch.nn.ModuleDict({"val": CharErrorRate(), "test": CharErrorRate()})
        self.bad_in_a_row = 0
        self.bad_total = 0

    def sampling_prob(self) -> float:
        return self.sampling.prob(self.global_step) if self.sampling is not None else 0.0

    def step(self, batch: dict, stage: str) -> torch.Tensor | None:
        """Shared by training and validation: losses, logged under ``stage/``."""
        prob = self.sampling_prob() if stage == "train" else 0.0
        out = self.model(batch["feats"], batch["feats_lens"], batch["ys"], batch["ys_lens"], sampling_prob=prob)
        B = len(batch["ids"])
        if out["num_infeasible"]:
            bad = [u for u, x in zip(batch["ids"], out["ctc_infeasible"].tolist()) if x]
            log.warning("left out of the CTC loss (encoder output shorter than the target): %s", ", ".join(bad))
        for key in ("loss", "loss_ctc", "loss_att", "th_accuracy"):
            if out.get(key) is not None:
                self.log(f"{stage}/{key}", out[key].detach(), batch_size=B, prog_bar=key == "loss",
                         sync_dist=stage != "train")
        if stage == "train":
            self.log("train/sampling_prob", prob, batch_size=B)
        return out

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        out = self.step(batch, "train")
        if not math.isfinite(out["loss"].item()):
            self.bad_in_a_row += 1
            self.bad_total += 1
            log.warning("non-finite loss in batch %d (%s...): skipped (%d in a row, %d in all)",
                        batch_idx, batch["ids"][0], self.bad_in_a_row, self.bad_total)
            if self.bad_in_a_row >= self.max_bad_batches:
                raise RuntimeError(f"{self.bad_in_a_row} batches in a row had a non-finite loss: stopping. "
                                   "Lower the learning rate or check the data.")
            return None  # Lightning skips the optimizer step
        self.bad_in_a_row = 0
        return out["loss"]

    def evaluate(self, batch: dict, stage: str) -> torch.Tensor:
        """Losses plus greedy-CTC character error rate (``stage/cer``), from one encoder pass."""
        out = self.step(batch, stage)
        log_probs = self.model.ctc_log_probs(out["enc_out"])  # (B, T', V)
        hyps, _ = ctc_greedy_search(log_probs, out["enc_lens"], blank=self.tokenizer.blank_id)
        self.cer[stage].update([self.tokenizer.decode(h) for h in hyps], batch["texts"])
        self.log(f"{stage}/cer", self.cer[stage], batch_size=len(batch["ids"]), prog_bar=True)
        return out["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self.evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self.evaluate(batch, "test")

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(self.current_epoch)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        cer = self.trainer.callback_metrics.get("val/cer")
        checkpoint["asr"] = {"meta": json.dumps(self.meta, ensure_ascii=False),
                             "val_cer": float(cer) if cer is not None else None, "world_size": self.trainer.world_size}
