"""asr.csv_logger: a run interrupted and resumed from its checkpoint logs the same curve as the run left alone
(Lightning's own CSV logger deletes the first part), and the reader drops the points the resumed part logs again."""
from __future__ import annotations

import csv

import pytorch_lightning as pl
import torch
from plot_training import read_metrics
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from asr.csv_logger import ResumableCSVLogger


class Logs(pl.LightningModule):
    """One parameter; logs a value that depends on the step and the weights only (the same in both runs)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def training_step(self, batch, batch_idx):
        loss = (self.w * batch).pow(2).mean()
        self.log("train/loss", loss)
        if self.global_step >= 11:
            self.log("train/late", float(self.global_step))  # a column the resumed part adds to the file
        return loss

    def train_dataloader(self):
        # identical batches: a resumed run (which restarts its epoch's data) logs what the whole run logs
        return torch.utils.data.DataLoader(torch.ones(40, 1), batch_size=2)  # 20 steps an epoch

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def train(exp, logger_cls, max_steps: int, resume: bool = False, every_n: int = 4):
    torch.manual_seed(0)
    ckpt = ModelCheckpoint(dirpath=exp / "checkpoints", every_n_train_steps=every_n, save_last=True)
    trainer = pl.Trainer(max_steps=max_steps, logger=logger_cls(save_dir=exp, name="csv", version=""),
                         callbacks=[ckpt], log_every_n_steps=1, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(Logs(), ckpt_path=str(exp / "checkpoints" / "last.ckpt") if resume else None)


def test_a_resumed_run_logs_the_same_curve_as_one_left_alone(tmp_path):
    train(tmp_path / "whole", ResumableCSVLogger, max_steps=14)
    train(tmp_path / "parts", ResumableCSVLogger, max_steps=10)
    # "killed" at step 10: its last checkpoint is the one of step 8 (every 4 steps), so steps 8 and 9 are logged twice
    assert torch.load(tmp_path / "parts" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    train(tmp_path / "parts", ResumableCSVLogger, max_steps=14, resume=True)
    with open(tmp_path / "parts" / "csv" / "metrics.csv", newline="") as f:
        logged = [int(r["step"]) for r in csv.DictReader(f) if r["train/loss"]]
    assert logged == list(range(10)) + list(range(8, 14))
    whole, parts = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "parts")
    assert [s for s, _ in whole["train/loss"]] == list(range(14))
    assert [s for s, _ in whole["train/late"]] == [11, 12, 13]
    assert parts == whole


def test_lightnings_own_logger_loses_the_first_part(tmp_path):
    """What asr.csv_logger fixes: the stock logger keeps only the resumed part's rows."""
    train(tmp_path / "parts", CSVLogger, max_steps=10)
    train(tmp_path / "parts", CSVLogger, max_steps=14, resume=True)
    # the resumed part starts at the last checkpoint (step 8: every 4 steps); steps 0-7 are gone
    assert [s for s, _ in read_metrics(tmp_path / "parts")["train/loss"]] == list(range(8, 14))


def test_a_finished_run_resumed_keeps_its_log(tmp_path):
    """A sweep rerun after a crash in evaluation resumes a run that has nothing left to train."""
    train(tmp_path / "run", ResumableCSVLogger, max_steps=8)
    before = read_metrics(tmp_path / "run")
    train(tmp_path / "run", ResumableCSVLogger, max_steps=8, resume=True)
    assert read_metrics(tmp_path / "run") == before and len(before["train/loss"]) == 8
