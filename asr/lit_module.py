"""The LightningModule: thin. The networks are built from config and passed in; one shared step."""
from __future__ import annotations

import functools

import json
import logging
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
        max_bad_batches: stop (on every rank) after this many optimizer steps in a row were skipped for a
            non-finite loss or gradient norm.
        meta: JSON-serialisable facts stored in every checkpoint (model config, features, CMVN, tokenizer),
            so that a checkpoint alone can become a model file.
        val_chunk_size: for an encoder that can decode chunk by chunk (``causal``), validation also logs
            ``val/cer_chunk``: greedy CTC CER with attention limited to chunks of this many encoder frames (all
            left chunks), which is what streaming decoding computes; 0 = off.
    """

    flops_per_batch = None  # read by Lightning's ThroughputMonitor: FLOPs are not counted, only samples and frames

    def __init__(self, model: ASRModel, tokenizer: Tokenizer, optimizer: Callable, scheduler: Callable | None = None,
                 sampling: SamplingSchedule | None = None, max_bad_batches: int = 20, meta: dict | None = None,
                 val_chunk_size: int = 16):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.sampling, self.max_bad_batches, self.meta = sampling, max_bad_batches, meta or {}
        self.cer = torch.nn.ModuleDict({"val": CharErrorRate(), "test": CharErrorRate(), "val_chunk": CharErrorRate()})
        self.val_chunk_size = val_chunk_size
        self.bad_in_a_row = 0  # optimizer steps skipped in a row (the same on every rank)
        self.bad_total = 0
        self.skip_step = False  # set by a non-finite loss, cleared when the step is skipped

    def sampling_prob(self) -> float:
        return self.sampling.prob(self.global_step) if self.sampling is not None else 0.0

    def step(self, batch: dict, stage: str) -> torch.Tensor | None:
        """Shared by training and validation: losses, logged under ``stage/``."""
        prob = self.sampling_prob() if stage == "train" else 0.0
        if stage == "train":
            self.model.encoder.set_training_step(self.global_step)
        out = self.model(batch["feats"], batch["feats_lens"], batch["ys"], batch["ys_lens"], sampling_prob=prob)
        B = len(batch["ids"])
        if out["num_infeasible"]:
            bad = [u for u, x in zip(batch["ids"], out["ctc_infeasible"].tolist()) if x]
            log.warning("left out of the CTC loss (encoder output shorter than the target): %s", ", ".join(bad))
        for key in ("loss", "loss_ctc", "loss_att", "th_accuracy"):
            if out.get(key) is not None and torch.isfinite(out[key]):
                self.log(f"{stage}/{key}", out[key].detach(), batch_size=B, prog_bar=key == "loss",
                         sync_dist=stage != "train")
        if stage == "train":
            self.log("train/sampling_prob", prob, batch_size=B)
        return out

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """The loss to back-propagate, the same decision on every rank.

        Every rank learns whether any rank's loss is non-finite (one all-reduce of a flag); if so, every rank
        puts back the BatchNorm statistics the forward pass changed and returns a zero loss that touches every parameter (so DDP's gradient all-reduce runs as usual, never
        ``None``, which would leave the other ranks waiting) and the optimizer step is skipped
        (:meth:`on_before_optimizer_step`). Otherwise the loss is scaled so that DDP's average of the ranks'
        gradients is the gradient of the mean over the *global* batch, whatever the ranks' batch sizes:
        ``loss_r * B_r * world / B_global`` (one all-reduce of the batch size).
        """
        running = self.running_statistics()
        saved = [buffer.clone() for buffer in running]
        out = self.step(batch, "train")
        loss = out["loss"]
        strategy = self.trainer.strategy
        if strategy.reduce_boolean_decision(not bool(torch.isfinite(loss)), all=False):
            self.skip_step = True
            for buffer, before in zip(running, saved):  # a NaN batch would poison BatchNorm's statistics for good
                buffer.copy_(before)
            log.warning("non-finite loss on some rank at step %d (this rank's batch %d: %s...): the step is "
                        "skipped on every rank", self.global_step, batch_idx, batch["ids"][0] if batch["ids"] else "-")
            return sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
        world = self.trainer.world_size
        if world > 1:
            size = torch.tensor(float(len(batch["ids"])), device=loss.device)
            totals = strategy.reduce(torch.stack([size, loss.detach() * size]), reduce_op="sum")  # (B_global, sum)
            loss = loss * size * world / totals[0]
            self.log("train/global_loss", totals[1] / totals[0], batch_size=1, rank_zero_only=True)
        return loss

    def running_statistics(self) -> list[torch.Tensor]:
        """The buffers a training forward pass updates (BatchNorm's running mean, variance and count)."""
        return [b for m in self.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                for b in m.buffers()]

    def on_before_optimizer_step(self, optimizer) -> None:
        """Skip the update (every parameter's gradient dropped, so the optimizer leaves it alone: no momentum,
        no weight decay) when this accumulation window had a non-finite loss or its gradient norm is not finite;
        count and log skipped steps; stop after ``max_bad_batches`` in a row."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])) if grads \
            else torch.zeros(())
        bad_norm = self.trainer.strategy.reduce_boolean_decision(not bool(torch.isfinite(norm)), all=False)
        if not (self.skip_step or bad_norm):
            self.bad_in_a_row = 0
            self.log("train/grad_norm", norm, batch_size=1)
            return
        reason = "non-finite loss" if self.skip_step else f"non-finite gradient norm ({float(norm)})"
        self.skip_step = False
        for p in self.parameters():
            p.grad = None
        self.bad_in_a_row += 1
        self.bad_total += 1
        self.log("train/skipped_steps", float(self.bad_total), batch_size=1)
        log.warning("step %d skipped: %s (%d in a row, %d in all)", self.global_step, reason, self.bad_in_a_row,
                    self.bad_total)
        if self.bad_in_a_row >= self.max_bad_batches:
            raise RuntimeError(f"{self.bad_in_a_row} optimizer steps in a row were skipped (last: {reason}): "
                               "stopping. Lower the learning rate or check the data.")

    def evaluate(self, batch: dict, stage: str) -> torch.Tensor:
        """Losses plus greedy-CTC character error rate (``stage/cer``), from one encoder pass."""
        out = self.step(batch, stage)
        log_probs = self.model.ctc_log_probs(out["enc_out"])  # (B, T', V)
        hyps, _ = ctc_greedy_search(log_probs, out["enc_lens"], blank=self.tokenizer.blank_id)
        self.cer[stage].update([self.tokenizer.decode(h) for h in hyps], batch["texts"])
        self.log(f"{stage}/cer", self.cer[stage], batch_size=len(batch["ids"]), prog_bar=True)
        if stage == "val" and self.val_chunk_size > 0 and getattr(self.model.encoder, "causal", False):
            self.chunk_cer(batch)
        return out["loss"]

    def chunk_cer(self, batch: dict) -> None:
        """``val/cer_chunk``: greedy CTC CER of the encoder under the chunk mask of ``val_chunk_size`` frames."""
        enc_out, enc_lens = self.model.encode(batch["feats"], batch["feats_lens"], chunk_size=self.val_chunk_size,
                                              num_left_chunks=-1)  # (B, T', D), (B,)
        hyps, _ = ctc_greedy_search(self.model.ctc_log_probs(enc_out), enc_lens, blank=self.tokenizer.blank_id)
        self.cer["val_chunk"].update([self.tokenizer.decode(h) for h in hyps], batch["texts"])
        self.log("val/cer_chunk", self.cer["val_chunk"], batch_size=len(batch["ids"]))

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self.evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self.evaluate(batch, "test")

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(self.current_epoch)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clip as ``trainer.gradient_clip_val`` says, also for a fused optimizer under bf16-mixed precision.

        Lightning's mixed-precision plugin refuses to clip for any optimizer that unscales gradients itself (fused
        AdamW), although under bf16 nothing is scaled: the gradients are the true ones, so they are clipped here,
        as Lightning clips them in 32-bit. Under fp16 (a gradient scaler) Lightning's own path runs: it unscales
        first, and :meth:`configure_optimizers` builds no fused optimizer then.
        """
        raw = getattr(optimizer, "optimizer", optimizer)  # a LightningOptimizer wraps the torch one
        fused = getattr(raw, "_step_supports_amp_scaling", False)
        if not (gradient_clip_val and fused) or getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if str(gradient_clip_algorithm or "norm") == "value":
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    def configure_optimizers(self):
        factory = self.optimizer_factory
        keywords = getattr(factory, "keywords", {}) or {}
        if keywords.get("fused") and getattr(self.trainer.precision_plugin, "scaler", None) is not None \
                and self.trainer.gradient_clip_val:
            # fp16 with a gradient scaler: a fused optimizer would unscale inside its step, after clipping has seen
            # the scaled gradients (Lightning refuses it); the foreach implementation is the same update
            log.info("optimizer: fused=false under %s precision with gradient clipping", self.trainer.precision)
            factory = functools.partial(factory, fused=False)
        optimizer = factory(self.model.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        cer = self.trainer.callback_metrics.get("val/cer")
        checkpoint["asr"] = {"meta": json.dumps(self.meta, ensure_ascii=False),
                             "val_cer": float(cer) if cer is not None else None, "world_size": self.trainer.world_size}
