"""A callback the DDP tests add from the command line: one rank's batch becomes NaN at one step."""
from __future__ import annotations

import pytorch_lightning as pl


class InjectNaN(pl.Callback):
    """Set rank ``rank``'s features to NaN in the batch of optimizer step ``step`` (a corrupt file, an overflow)."""

    def __init__(self, step: int, rank: int):
        self.step, self.rank = step, rank

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch: dict, batch_idx: int) -> None:
        if trainer.global_step == self.step and trainer.global_rank == self.rank:
            batch["feats"][0] = float("nan")
