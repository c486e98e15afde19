"""How LM text is tokenised, identically for training, perplexity and decoding.

- ``char``: the line normalised (``asr.data.text.normalize_text``, which removes the word-segmentation
  spaces between Chinese characters) and split into the ASR character units (``CharTokenizer``,
  ``▁`` between Latin words), so that the LM's words are the model's units;
- ``word``: each whitespace-separated word normalised on its own (the segmentation is kept).
"""
from __future__ import annotations

from asr.data.text import normalize_text
from asr.tokenizer.char import CharTokenizer

UNITS = ("char", "word")


def tokenise(line: str, unit: str) -> list[str]:
    """One sentence -> its LM words (module docstring)."""
    if unit == "char":
        return CharTokenizer.split(None, normalize_text(line))
    if unit == "word":
        return [w for w in (normalize_text(w) for w in line.split()) if w]
    raise ValueError(f"LM unit must be one of {UNITS}, got {unit!r}")
