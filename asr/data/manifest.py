"""Manifests: one JSON line per utterance, read lazily.

A row is ``{"id", "audio", "duration", "speaker", "text"}`` (plus ``sample_rate`` when it is not
16 kHz). :class:`Manifest` keeps only byte offsets and durations in memory (12 bytes per utterance)
and reads a row from disk when asked, so a corpus far larger than memory can be batched by length.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

REQUIRED_KEYS = ("id", "audio", "duration", "text")
UNLABELLED_KEYS = ("id", "audio", "duration")  # untranscribed audio (pseudo-labelling, asr/nst): no text


class Manifest:
    """Random access to a JSON-lines manifest without holding its rows in memory.

    Args:
        path: the ``.jsonl`` file. Relative ``audio`` paths are resolved against its folder.
        required: the keys every row must have (:data:`UNLABELLED_KEYS` for audio without transcripts).
    """

    def __init__(self, path: str | os.PathLike, required: tuple[str, ...] = REQUIRED_KEYS):
        self.path = Path(path)
        self.required = required
        offsets, durations = [], []
        with open(self.path, "rb") as f:
            offset = 0
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    row = self._parse(line, lineno)
                    offsets.append(offset)
                    durations.append(float(row["duration"]))
                offset += len(line)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.durations = np.asarray(durations, dtype=np.float32)
        self._file = None

    def _parse(self, line: bytes, lineno: int | str) -> dict:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{self.path}:{lineno}: not a JSON line ({e.msg})") from None
        missing = [k for k in self.required if k not in row]
        if missing:
            raise ValueError(f"{self.path}:{lineno}: missing keys {missing} (a row needs {list(self.required)})")
        return row

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> dict:
        if self._file is None:  # opened lazily, so each DataLoader worker gets its own handle
            self._file = open(self.path, "rb")
        self._file.seek(self.offsets[i])
        row = self._parse(self._file.readline(), f"row {i}")
        audio = Path(row["audio"])
        if not audio.is_absolute():
            row["audio"] = str(self.path.parent / audio)
        return row

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getstate__(self):
        return {**self.__dict__, "_file": None}
