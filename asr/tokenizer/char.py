"""Character units, as in AISHELL-1 recipes: one unit per Chinese character, ``▁`` for a space."""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from asr.tokenizer.base import Tokenizer, wrap_units

SPACE = "▁"


class CharTokenizer(Tokenizer):
    """One unit per character of the normalised text (spaces between Latin words become ``▁``)."""

    kind = "char"

    def split(self, text: str) -> list[str]:
        return [SPACE if c == " " else c for c in text]

    def join(self, units: list[str]) -> str:
        return "".join(units).replace(SPACE, " ")

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> "CharTokenizer":
        """Vocabulary of every character seen at least ``min_count`` times, sorted by code point."""
        counts = Counter(c for t in texts for c in cls.split(None, t))
        return cls(wrap_units(sorted(u for u, n in counts.items() if n >= min_count)))
