"""The one small interface every tokenizer implements, and the units-file format they share.

Unit ids follow the WeNet/AISHELL convention: ``<blank>`` = 0, ``<unk>`` = 1, the units, and
``<sos/eos>`` last. A tokenizer serialises to a plain dict (stored inside the model file) and to a
``units.txt`` file (``unit id`` per line) saved beside the model.
"""
from __future__ import annotations

import os
from pathlib import Path

from asr.utils.io import atomic_write

BLANK, UNK, SOS_EOS = "<blank>", "<unk>", "<sos/eos>"


class Tokenizer:
    """Maps normalised text to unit ids and back.

    Subclasses implement :meth:`split` (text -> units) and :meth:`join` (units -> text).
    """

    kind = "base"

    def __init__(self, units: list[str]):
        if units[:2] != [BLANK, UNK] or units[-1] != SOS_EOS:
            raise ValueError(f"units must start with {BLANK}, {UNK} and end with {SOS_EOS}")
        if len(set(units)) != len(units):
            raise ValueError("units contain duplicates")
        self.units = units
        self.unit_to_id = {u: i for i, u in enumerate(units)}

    # --- the interface -------------------------------------------------------------------------
    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def join(self, units: list[str]) -> str:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Text -> ids; units outside the vocabulary become ``<unk>`` (see :meth:`oov`)."""
        unk = self.unk_id
        return [self.unit_to_id.get(u, unk) for u in self.split(text)]

    def decode(self, ids: list[int]) -> str:
        """Ids -> text; blank and ``<sos/eos>`` are dropped."""
        skip = {self.blank_id, self.eos_id}
        return self.join([self.units[i] for i in ids if i not in skip])

    def oov(self, text: str) -> list[str]:
        """The units of ``text`` that are not in the vocabulary (for clear bad-input messages)."""
        return [u for u in self.split(text) if u not in self.unit_to_id]

    # --- ids ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.units)

    blank_id = property(lambda self: 0)
    unk_id = property(lambda self: 1)
    sos_id = property(lambda self: len(self.units) - 1)
    eos_id = property(lambda self: len(self.units) - 1)

    # --- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-serialisable description (stored in the model file)."""
        return {"kind": self.kind, "units": self.units}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``units.txt`` into ``directory`` and return its path."""
        path = Path(directory) / "units.txt"
        with atomic_write(path) as f:
            f.writelines(f"{u} {i}\n" for i, u in enumerate(self.units))
        return path


def read_units(path: str | os.PathLike) -> list[str]:
    """Read a ``unit id`` file, checking the ids are 0..N-1 in order."""
    units = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").rsplit(" ", 1)
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) != len(units):
                raise ValueError(f"{path}:{lineno}: expected '<unit> {len(units)}', got {line.strip()!r}")
            units.append(parts[0])
    return units


def wrap_units(units: list[str]) -> list[str]:
    """Add the special units around a sorted list of ordinary units."""
    return [BLANK, UNK, *units, SOS_EOS]
