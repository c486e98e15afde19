"""Tokenizers: character, tone-numbered pinyin and sentencepiece BPE, behind one interface."""
from __future__ import annotations

import base64
import os
from pathlib import Path

from asr.tokenizer.base import Tokenizer, read_units
from asr.tokenizer.bpe import BPETokenizer
from asr.tokenizer.char import CharTokenizer
from asr.tokenizer.pinyin import PinyinTokenizer

KINDS = {"char": CharTokenizer, "pinyin": PinyinTokenizer, "bpe": BPETokenizer}


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """Inverse of :meth:`Tokenizer.to_dict` (used when loading a model file)."""
    if d.get("kind") not in KINDS:
        raise ValueError(f"unknown tokenizer kind {d.get('kind')!r}; allowed: {sorted(KINDS)}")
    if d["kind"] == "bpe":
        return BPETokenizer(base64.b64decode(d["model"]))
    return KINDS[d["kind"]](d["units"])


def load_tokenizer(directory: str | os.PathLike, kind: str = "char") -> Tokenizer:
    """Read a tokenizer saved by :meth:`Tokenizer.save` (``units.txt``, plus ``bpe.model`` for BPE)."""
    directory = Path(directory)
    if kind == "bpe":
        return BPETokenizer((directory / "bpe.model").read_bytes())
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; allowed: {sorted(KINDS)}")
    return KINDS[kind](read_units(directory / "units.txt"))


__all__ = ["Tokenizer", "CharTokenizer", "PinyinTokenizer", "BPETokenizer", "tokenizer_from_dict", "load_tokenizer"]
