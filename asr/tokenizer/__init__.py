"""Tokenizers: character, tone-numbered pinyin and sentencepiece BPE, behind one interface."""
from __future__ import annotations

import base64
import os
from pathlib import Path

from asr.tokenizer.base import Tokenizer, read_units
from asr.tokenizer.bpe import BPETokenizer
from asr.tokenizer.char import CharTokenizer
from asr.tokenizer.pinyin import PinyinTokenizer
from asr.utils.untrusted import check_fields

KINDS = {"char": CharTokenizer, "pinyin": PinyinTokenizer, "bpe": BPETokenizer}


def tokenizer_from_dict(d: dict, where: str = "tokenizer") -> Tokenizer:
    """Inverse of :meth:`Tokenizer.to_dict` (used when loading a model file), checking keys and types.

    Raises:
        ValueError: starting with ``where``.
    """
    check_fields(d, {"kind": (str,), "units": (list,), "model": (str,)}, where, required=("kind",))
    kind = d["kind"]
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown tokenizer kind {kind!r}; allowed: {sorted(KINDS)}")
    try:
        if kind == "bpe":
            if "model" not in d:
                raise ValueError("a bpe tokenizer needs 'model' (base64)")
            return BPETokenizer(base64.b64decode(d["model"], validate=True))
        units = d.get("units")
        if units is None or not all(isinstance(u, str) and u for u in units):
            raise ValueError("'units' must be a list of non-empty strings")
        return KINDS[kind](units)
    except (ValueError, RuntimeError) as e:  # binascii.Error is a ValueError; sentencepiece raises RuntimeError
        raise ValueError(f"{where}: {e}") from None


def load_tokenizer(directory: str | os.PathLike, kind: str = "char") -> Tokenizer:
    """Read a tokenizer saved by :meth:`Tokenizer.save` (``units.txt``, plus ``bpe.model`` for BPE)."""
    directory = Path(directory)
    if kind == "bpe":
        return BPETokenizer((directory / "bpe.model").read_bytes())
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; allowed: {sorted(KINDS)}")
    return KINDS[kind](read_units(directory / "units.txt"))


__all__ = ["Tokenizer", "CharTokenizer", "PinyinTokenizer", "BPETokenizer", "tokenizer_from_dict", "load_tokenizer"]
