"""Lightning's CSV logger, except that a resumed run keeps the log of the part before the interruption.

Lightning's CSV writer deletes ``metrics.csv`` when it finds one (it assumes a new experiment), so every resumed run
(``resume=auto``: an ablation sweep rerun after a crash, a cluster job requeued) lost its curve up to the resume,
and a run resumed after it had finished lost all of it. Here the file is kept and appended to, with its columns.

Rows the first part logged after its last checkpoint are logged again by the resumed part, from that checkpoint's
step on; a reader keeps the later ones (``tools/plot_training.py: read_metrics``).
"""
from __future__ import annotations

import csv

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment


class AppendingWriter(ExperimentWriter):
    """:class:`ExperimentWriter` that appends to an existing ``metrics.csv`` instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            # the file's columns in its order: rows are appended under them; a new metric rewrites the header
            self.metrics_keys = list(header)


class ResumableCSVLogger(CSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` writing through :class:`AppendingWriter` (same arguments)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingWriter(log_dir=self.log_dir)
        return self._experiment
