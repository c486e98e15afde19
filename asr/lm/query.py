"""Querying an n-gram model word by word: KenLM (ARPA or binary), or the Python ARPA model.

Both backends follow the same small interface (:class:`NgramQuery`): a sentence-start state, and
``score(state, word) -> (log10 P(word | state), next state)``; states are hashable, so scores can
be cached. :func:`load_lm` picks KenLM when its Python module is installed (a main dependency of the
project: pip compiles it from source with the C++ compiler, no Boost needed), otherwise reads an ARPA
file into :class:`asr.lm.arpa.ArpaModel` (pure Python, the tested fallback: fine for the demo, slow to
load for a large model; a KenLM binary file needs KenLM).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Hashable, Protocol

from asr.lm.arpa import BOS, EOS, UNK, ArpaModel, read_arpa


class NgramQuery(Protocol):
    """What the fusion scorers need from an n-gram model."""

    order: int

    def begin(self) -> Hashable:
        """State after ``<s>``."""

    def null_context(self) -> Hashable:
        """The empty history: ``score`` from it gives unigram probabilities."""

    def score(self, state: Hashable, word: str) -> tuple[float, Hashable]:
        """log10 P(word | state) (a word outside the vocabulary is scored as ``<unk>``) and the next state."""

    def __contains__(self, word: str) -> bool:
        """Whether ``word`` is in the vocabulary."""


class ArpaQuery:
    """:class:`NgramQuery` over an :class:`ArpaModel`; a state is the minimal history tuple."""

    def __init__(self, model: ArpaModel):
        self.model, self.order = model, model.order
        self._vocab = set(model.vocab)

    def begin(self) -> tuple[str, ...]:
        return self.model.state((BOS,))

    def null_context(self) -> tuple[str, ...]:
        return ()

    def score(self, state: tuple[str, ...], word: str) -> tuple[float, tuple[str, ...]]:
        logp = self.model.log10_prob(state, word)
        return logp, self.model.state(state + (word if word in self._vocab else UNK,))

    def __contains__(self, word: str) -> bool:
        return word in self._vocab


class KenLMQuery:
    """:class:`NgramQuery` over a ``kenlm.Model`` (ARPA or KenLM binary); a state is a ``kenlm.State``."""

    def __init__(self, path: str | os.PathLike):
        import kenlm  # a main dependency; load_lm falls back to ArpaQuery without it

        self._kenlm = kenlm
        self.model = kenlm.Model(str(path))
        self.order = self.model.order

    def begin(self) -> Any:
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def null_context(self) -> Any:
        state = self._kenlm.State()
        self.model.NullContextWrite(state)
        return state

    def score(self, state: Any, word: str) -> tuple[float, Any]:
        out = self._kenlm.State()
        return self.model.BaseScore(state, word, out), out

    def __contains__(self, word: str) -> bool:
        return word in self.model


def kenlm_available() -> bool:
    try:
        import kenlm  # noqa: F401
    except ImportError:
        return False
    return True


def load_lm(path: str | os.PathLike, backend: str = "auto") -> NgramQuery:
    """Open an n-gram model for querying.

    Args:
        path: ARPA file (``.arpa``, optionally any other name) or KenLM binary.
        backend: ``"kenlm"``, ``"python"`` (ARPA only) or ``"auto"`` (KenLM when installed).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown backend; a binary model without KenLM; a malformed ARPA file
            (:class:`asr.lm.arpa.ArpaError`, naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"language model {path} not found")
    if backend not in ("auto", "kenlm", "python"):
        raise ValueError(f"load_lm: backend must be auto, kenlm or python, got {backend!r}")
    if backend == "kenlm" or (backend == "auto" and kenlm_available()):
        if not kenlm_available():
            raise ValueError("load_lm: backend=kenlm but the kenlm module is not installed (pip install kenlm)")
        return KenLMQuery(path)
    with open(path, "rb") as f:
        head = f.read(4096)
    if b"\\data\\" not in head:
        raise ValueError(f"{path}: not an ARPA file (a KenLM binary?); querying it needs `pip install kenlm`")
    return ArpaQuery(read_arpa(path))


__all__ = ["NgramQuery", "ArpaQuery", "KenLMQuery", "load_lm", "kenlm_available", "BOS", "EOS", "UNK"]
