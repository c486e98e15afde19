"""Tone-numbered pinyin units (``zhong1 guo2``): a smaller, pronunciation-level unit set.

Decoding gives pinyin, not characters: ``decode(encode(text)) == to_pinyin(text)``.
"""
from __future__ import annotations

from typing import Iterable

from asr.tokenizer.base import Tokenizer, wrap_units


def to_pinyin(text: str) -> str:
    """Characters -> space-separated tone-numbered syllables (neutral tone is 5)."""
    from pypinyin import Style, lazy_pinyin

    return " ".join(lazy_pinyin(text.replace(" ", ""), style=Style.TONE3, neutral_tone_with_five=True))


class PinyinTokenizer(Tokenizer):
    """One unit per tone-numbered syllable; text that is already pinyin passes through."""

    kind = "pinyin"

    def split(self, text: str) -> list[str]:
        return to_pinyin(text).split()

    def join(self, units: list[str]) -> str:
        return " ".join(units)

    @classmethod
    def build(cls, texts: Iterable[str]) -> "PinyinTokenizer":
        return cls(wrap_units(sorted({s for t in texts for s in to_pinyin(t).split()})))
