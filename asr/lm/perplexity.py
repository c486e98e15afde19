"""Perplexity of n-gram models on text: ``10 ** (-sum log10 P / tokens)``, ``</s>`` counted as a token.

Every sentence is scored from ``<s>`` (:class:`asr.lm.query.NgramQuery`, KenLM or the Python ARPA
model) with the tokenisation of :mod:`asr.lm.text` (``char`` or ``word``). The words outside the
model's vocabulary are scored as ``<unk>`` and counted (``oov``).

    python -m asr.lm.perplexity --lm a.arpa b.arpa --manifest data/demo/dev.jsonl data/demo/test.jsonl --unit char
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable

from asr.lm.arpa import EOS
from asr.lm.query import NgramQuery, load_lm
from asr.lm.text import tokenise
from asr.utils.io import read_jsonl


def perplexity(lm: NgramQuery, sentences: Iterable[list[str]]) -> dict:
    """Returns ``{"ppl", "log10_prob", "tokens", "sentences", "oov"}`` (tokens include one ``</s>`` per sentence)."""
    total, tokens, oov, count = 0.0, 0, 0, 0
    for words in sentences:
        state = lm.begin()
        for w in [*words, EOS]:
            logp, state = lm.score(state, w)
            total += logp
            oov += w not in lm
        tokens += len(words) + 1
        count += 1
    if not tokens:
        raise ValueError("perplexity: no text")
    return {"ppl": 10.0 ** (-total / tokens), "log10_prob": total, "tokens": tokens, "sentences": count, "oov": oov}


def read_sentences(path: Path, unit: str) -> list[list[str]]:
    """Manifest (``.jsonl``: its ``text`` fields) or a text file (one sentence per line)."""
    if path.suffix == ".jsonl":
        texts = [row["text"] for row in read_jsonl(path)]
    else:
        texts = path.read_text(encoding="utf-8").splitlines()
    return [w for t in texts if (w := tokenise(t, unit))]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lm", nargs="+", required=True, type=Path, help="ARPA files or KenLM binaries")
    p.add_argument("--manifest", nargs="+", required=True, type=Path, help="manifests (.jsonl) or text files")
    p.add_argument("--unit", choices=["char", "word"], default="char")
    p.add_argument("--backend", choices=["auto", "kenlm", "python"], default="auto")
    args = p.parse_args(argv)
    try:
        data = {m: read_sentences(m, args.unit) for m in args.manifest}
        for path in args.lm:
            lm = load_lm(path, args.backend)
            size = path.stat().st_size / 1e6
            for m, sentences in data.items():
                r = perplexity(lm, sentences)
                print(f"{path.name}\t{size:.2f} MB\torder {lm.order}\t{m}\tppl {r['ppl']:.2f}\t"
                      f"{r['tokens']} tokens\t{r['oov']} oov")
    except (ValueError, OSError, KeyError) as e:
        sys.exit(f"asr.lm.perplexity: {e}")


if __name__ == "__main__":
    main()
