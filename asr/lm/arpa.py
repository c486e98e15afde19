"""Back-off n-gram models in the ARPA text format: an in-memory model, a strict reader, a writer.

An ARPA file lists, for every order n = 1..N, n-grams ``w1 .. wn`` with a log10 probability
``log10 p(wn | w1 .. wn-1)`` and, below the highest order, an optional log10 back-off weight
``log10 bow(w1 .. wn)`` (absent = 0, i.e. a weight of 1). The probability of a word ``w`` after a
history ``h`` is

    P(w | h) = p(h w)                      if ``h w`` is listed
             = bow(h) * P(w | h[1:])       otherwise (bow(h) = 1 when ``h`` is not listed)

down to the unigrams; a word outside the vocabulary is read as ``<unk>`` when the model has it.
``<s>`` is only ever a history (its unigram probability is conventionally 10^-99 or absent).

:class:`ArpaModel` keeps the n-grams of each order in two dicts (word tuple -> log10 value), enough
for the small and medium models of this project (tools, tests, merging); decoding with a large
model goes through KenLM (:class:`asr.lm.query.KenLMQuery`).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from asr.utils.io import atomic_write

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LOG10_ZERO = -99.0  # what ARPA files write for a probability of 0 (e.g. p(<s>))
_COUNT = re.compile(r"^ngram\s+(\d+)\s*=\s*(\d+)\s*$")
_SECTION = re.compile(r"^\\(\d+)-grams:\s*$")


class ArpaError(ValueError):
    """A malformed ARPA file; the message names the file and the line."""


@dataclass
class ArpaModel:
    """A back-off n-gram model.

    Attributes:
        prob: ``prob[n - 1]`` maps each listed n-gram (a tuple of n words) to its log10 probability.
        bow: ``bow[n - 1]`` maps n-grams of order n < N to their log10 back-off weight (absent = 0).
    """

    prob: list[dict[tuple[str, ...], float]] = field(default_factory=list)
    bow: list[dict[tuple[str, ...], float]] = field(default_factory=list)

    @classmethod
    def empty(cls, order: int) -> ArpaModel:
        return cls([{} for _ in range(order)], [{} for _ in range(order)])

    @property
    def order(self) -> int:
        return len(self.prob)

    @property
    def vocab(self) -> list[str]:
        """The unigrams, in file order."""
        return [w for (w,) in self.prob[0]] if self.prob else []

    def counts(self) -> list[int]:
        return [len(p) for p in self.prob]

    def log10_prob(self, history: Iterable[str], word: str) -> float:
        """log10 P(word | history) with back-off (see the module docstring).

        Args:
            history: the preceding words, oldest first (only the last N - 1 are used).
            word: the predicted word; outside the vocabulary it is read as ``<unk>``
                (log10 0 = -inf when the model has no ``<unk>``).
        """
        if (word,) not in self.prob[0]:
            if (UNK,) not in self.prob[0]:
                return -math.inf
            word = UNK
        hist = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        total = 0.0
        for start in range(len(hist) + 1):
            ctx = hist[start:]
            p = self.prob[len(ctx)].get(ctx + (word,))
            if p is not None:
                return total + p
            if ctx:
                total += self.bow[len(ctx) - 1].get(ctx, 0.0)
        raise AssertionError("unreachable: the word is a unigram")

    def state(self, history: Iterable[str]) -> tuple[str, ...]:
        """The shortest suffix of ``history`` that predicts every next word as ``history`` does.

        Back-off makes a history that is not a listed n-gram behave like its suffix, so the
        last N - 1 words, shortened while the result is not listed, are enough to continue a
        sentence (a smaller state makes more decoding prefixes share a cache entry).
        """
        hist = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        while hist and hist not in self.prob[len(hist) - 1]:
            hist = hist[1:]
        return hist


def read_arpa(path: str | os.PathLike) -> ArpaModel:
    """Read an ARPA file, checking its structure.

    Raises:
        ArpaError: naming ``path:line`` when the header is missing or malformed, a line is not
            ``log10p w1 .. wn [log10bow]`` for its section, a section is missing or out of order,
            the number of n-grams of an order differs from the header's ``ngram n=COUNT``, an
            n-gram is listed twice, or the file does not end with ``\\end\\``.
    """
    path = Path(path)
    declared: dict[int, int] = {}
    model: ArpaModel | None = None
    section = 0  # order being read; 0 = header
    ended = False
    lineno = 0

    def fail(msg: str) -> ArpaError:
        return ArpaError(f"{path}:{lineno}: {msg}")

    def close_section() -> None:
        if section and len(model.prob[section - 1]) != declared[section]:
            raise fail(f"the header declares ngram {section}={declared[section]} but "
                       f"{len(model.prob[section - 1])} {section}-grams are listed before this line")

    with open(path, encoding="utf-8") as f:
        seen_data = False
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            if ended:
                raise fail(f"text after \\end\\: {line[:60]!r}")
            if not seen_data:
                if line == "\\data\\":
                    seen_data = True
                continue  # text before \data\ is allowed (comments)
            if model is None:  # reading the counts
                if m := _COUNT.match(line):
                    n, count = int(m.group(1)), int(m.group(2))
                    if n != len(declared) + 1:
                        raise fail(f"expected 'ngram {len(declared) + 1}=COUNT', got {line!r}")
                    declared[n] = count
                    continue
                if not declared:
                    raise fail(f"expected 'ngram 1=COUNT' after \\data\\, got {line!r}")
                model = ArpaModel.empty(len(declared))
            if line == "\\end\\":
                close_section()
                if section != model.order:
                    raise fail(f"\\end\\ after the {section}-grams; the header declares order {model.order}")
                ended = True
                continue
            if m := _SECTION.match(line):
                close_section()
                n = int(m.group(1))
                if n != section + 1 or n > model.order:
                    raise fail(f"section \\{n}-grams: out of order (expected \\{section + 1}-grams: "
                               f"or \\end\\; the header declares order {model.order})")
                section = n
                continue
            if section == 0:
                raise fail(f"expected 'ngram N=COUNT' or \\1-grams:, got {line!r}")
            fields = line.split()
            if len(fields) not in (section + 1, section + 2):
                raise fail(f"a {section}-gram line has 'log10p', {section} words and an optional back-off; "
                           f"got {len(fields)} fields: {line[:80]!r}")
            try:
                logp = float(fields[0])
                bow = float(fields[section + 1]) if len(fields) == section + 2 else None
            except ValueError:
                raise fail(f"not a number in {line[:80]!r}") from None
            if not math.isfinite(logp) or logp > 1e-6 or (bow is not None and not math.isfinite(bow)):
                raise fail(f"a log10 probability must be finite and <= 0, a back-off finite: {line[:80]!r}")
            if bow is not None and section == model.order:
                raise fail(f"a back-off weight on a {section}-gram of the highest order: {line[:80]!r}")
            ngram = tuple(fields[1 : section + 1])
            if ngram in model.prob[section - 1]:
                raise fail(f"{section}-gram {' '.join(ngram)!r} listed twice")
            model.prob[section - 1][ngram] = min(logp, 0.0)
            if bow is not None and bow != 0.0:
                model.bow[section - 1][ngram] = bow
    if not seen_data:
        raise ArpaError(f"{path}: no \\data\\ line: not an ARPA file")
    if not ended:
        raise ArpaError(f"{path}:{lineno}: the file ends without \\end\\ (truncated?)")
    return model


def write_arpa(model: ArpaModel, path: str | os.PathLike, precision: int = 7) -> Path:
    """Write ``model`` as an ARPA file (to a temporary name, renamed when complete).

    N-grams are written in the model's dict order; ``precision`` significant digits.
    """
    path = Path(path)
    with atomic_write(path) as f:
        f.write("\\data\\\n")
        f.writelines(f"ngram {n}={c}\n" for n, c in enumerate(model.counts(), 1))
        for n in range(1, model.order + 1):
            f.write(f"\n\\{n}-grams:\n")
            bows = model.bow[n - 1]
            for ngram, logp in model.prob[n - 1].items():
                words = " ".join(ngram)
                p = f"{max(logp, LOG10_ZERO):.{precision}g}"
                bow = bows.get(ngram)
                f.write(f"{p}\t{words}\t{bow:.{precision}g}\n" if bow is not None and n < model.order
                        else f"{p}\t{words}\n")
        f.write("\n\\end\\\n")
    return path


def read_arpa_vocab(path: str | os.PathLike) -> list[str]:
    """The unigrams of an ARPA file, read without parsing the higher orders (for large files)."""
    words, in_unigrams = [], False
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif in_unigrams and (line.startswith("\\") or not line):
                if words:
                    return words
            elif in_unigrams:
                fields = line.split()
                if len(fields) not in (2, 3):
                    raise ArpaError(f"{path}:{lineno}: a 1-gram line is 'log10p word [log10bow]', got {line[:80]!r}")
                words.append(fields[1])
    if not words:
        raise ArpaError(f"{path}: no \\1-grams: section with words")
    return words
