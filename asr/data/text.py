"""Transcript normalisation, applied identically to training labels and to scoring.

The rule is explicit so that CER figures are comparable with published AISHELL-1 tables:

1. Unicode NFKC: full-width Latin letters, digits and punctuation become half-width.
2. Latin letters are upper-cased (AISHELL-1 style).
3. Whitespace is removed between CJK characters (AISHELL's word-segmentation spaces) and kept,
   collapsed to one space, between Latin words, so mixed Chinese-English text stays readable.
"""
from __future__ import annotations

import re
import unicodedata

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_NEXT_TO_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Normalise one transcript (see the module docstring for the rule)."""
    text = unicodedata.normalize("NFKC", text).upper()
    text = _SPACE_NEXT_TO_CJK.sub("", text)
    return _SPACES.sub(" ", text).strip()


def is_cjk(char: str) -> bool:
    """True for a CJK ideograph."""
    return re.fullmatch(f"[{_CJK}]", char) is not None
