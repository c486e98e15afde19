#!/usr/bin/env python
"""Train an n-gram language model (ARPA, optionally KenLM binary) from a text file, at any order.

The text, one sentence per line, is tokenised by ``asr.lm.text.tokenise``: ``--unit char`` into
the ASR character units, ``--unit word`` into its (normalised) words.

Estimators, both interpolated modified Kneser-Ney with the same conventions (they give the same model to
float precision): ``kenlm`` (KenLM's ``lmplz``, found with ``--kenlm-bin``, ``$KENLM_BIN``, ``PATH`` or the
cache of ``tools/build_kenlm.sh``, which builds it) or ``python`` (``asr.lm.estimate``, NumPy: about 120k
sentences in seconds); ``auto`` (default) takes lmplz when it is found, else the Python one. Small or
artificial texts need ``--discount-fallback`` with either. Also writes ``OUT.vocab`` (the words, one per
line: what ``lm.vocab`` wants for word-level fusion with a binary model).

    python tools/train_lm.py --text lm_text/train.txt --order 3 --unit char --out lm/char_3gram.arpa
    python tools/train_lm.py --text lm_text/train.txt --order 4 --unit word --out lm/word_4gram.arpa --binary
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asr.lm.arpa import BOS, EOS, UNK, read_arpa_vocab
from asr.lm.text import tokenise
from asr.utils.io import atomic_write

CACHE_BIN = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mandarin-asr" / "kenlm" / "bin"


def find_kenlm_program(name: str, kenlm_bin: str | os.PathLike | None = None) -> Path | None:
    """``lmplz`` or ``build_binary``: in ``kenlm_bin``, ``$KENLM_BIN``, ``PATH``, then the build cache."""
    for folder in (kenlm_bin, os.environ.get("KENLM_BIN")):
        if folder and (Path(folder) / name).is_file():
            return Path(folder) / name
    if found := shutil.which(name):
        return Path(found)
    return CACHE_BIN / name if (CACHE_BIN / name).is_file() else None


def tokenised_sentences(path: Path, unit: str) -> list[list[str]]:
    with open(path, encoding="utf-8") as f:
        return [words for line in f if (words := tokenise(line, unit))]


def train_lmplz(sentences: list[list[str]], order: int, out: Path, lmplz: Path, memory: str,
                discount_fallback: bool) -> None:
    """Run lmplz on the tokenised sentences; the ARPA is written to a temporary name, then renamed."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        text = Path(tmp) / "text.txt"
        text.write_text("".join(" ".join(s) + "\n" for s in sentences), encoding="utf-8")
        arpa = Path(tmp) / "model.arpa"
        cmd = [str(lmplz), "-o", str(order), "--text", str(text), "--arpa", str(arpa), "-S", memory, "-T", tmp]
        if discount_fallback:
            cmd.append("--discount_fallback")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            tail = "\n".join(r.stderr.strip().splitlines()[-8:])
            raise RuntimeError(f"lmplz failed (exit {r.returncode}):\n{tail}\n"
                               "(a small text may need --discount-fallback)")
        os.replace(arpa, out)


def build_binary(arpa: Path, out: Path, program: Path) -> None:
    tmp = out.with_name(f".{out.name}.tmp")
    r = subprocess.run([str(program), "trie", str(arpa), str(tmp)], capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"build_binary failed (exit {r.returncode}): {r.stderr.strip()[-500:]}")
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--text", required=True, type=Path, help="training text, one sentence per line")
    p.add_argument("--order", required=True, type=int)
    p.add_argument("--unit", choices=["char", "word"], default="char")
    p.add_argument("--out", required=True, type=Path, help="ARPA file to write")
    p.add_argument("--binary", action="store_true", help="also write OUT with .bin instead of .arpa (KenLM trie)")
    p.add_argument("--estimator", choices=["auto", "kenlm", "python"], default="auto",
                   help="kenlm (lmplz), python (asr.lm.estimate) or auto: lmplz when found, else python")
    p.add_argument("--kenlm-bin", help="folder with lmplz and build_binary")
    p.add_argument("--memory", default="1G", help="lmplz -S: memory for sorting (raise it for large texts)")
    p.add_argument("--discount-fallback", action="store_true",
                   help="discounts 0.5, 1, 1.5 for orders whose closed-form discounts fail (tiny texts; lmplz's "
                        "--discount_fallback)")
    args = p.parse_args(argv)

    if not args.text.is_file():
        sys.exit(f"train_lm.py: {args.text} not found")
    if args.order < 1:
        sys.exit("train_lm.py: --order must be >= 1")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    sentences = tokenised_sentences(args.text, args.unit)
    if not sentences:
        sys.exit(f"train_lm.py: {args.text} has no text")
    lmplz = find_kenlm_program("lmplz", args.kenlm_bin) if args.estimator != "python" else None
    if args.estimator == "kenlm" and lmplz is None:
        sys.exit("train_lm.py: lmplz not found (bash tools/build_kenlm.sh builds it; or --estimator python)")
    try:
        if lmplz is not None:
            estimator = f"lmplz ({lmplz})"
            train_lmplz(sentences, args.order, args.out, lmplz, args.memory, args.discount_fallback)
        else:
            from asr.lm.estimate import DEFAULT_FALLBACK, estimate

            estimator = "python modified Kneser-Ney (asr.lm.estimate)"
            estimate(sentences, args.order, DEFAULT_FALLBACK if args.discount_fallback else None).write_arpa(args.out)
        vocab = read_arpa_vocab(args.out)
        with atomic_write(args.out.with_suffix(".vocab")) as f:
            f.writelines(f"{w}\n" for w in vocab if w not in (BOS, EOS, UNK))
        if args.binary:
            program = find_kenlm_program("build_binary", args.kenlm_bin)
            if program is None:
                sys.exit("train_lm.py: build_binary not found (bash tools/build_kenlm.sh builds it)")
            build_binary(args.out, args.out.with_suffix(".bin"), program)
    except (RuntimeError, OSError, ValueError) as e:
        sys.exit(f"train_lm.py: {e}")
    tokens = sum(len(s) for s in sentences)
    print(f"{args.out}: {estimator}, order {args.order}, {args.unit} units, {len(sentences)} sentences, "
          f"{tokens} tokens, {len(vocab)} words, {args.out.stat().st_size / 1e6:.2f} MB, "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
