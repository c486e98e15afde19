"""Building the TLG decoding graph: CTC token topology T, lexicon L, n-gram grammar G.

``TLG = T o min(det(L o G))``, built with kaldilm (ARPA -> G) and kaldifst (compose, determinize,
minimize) in the way of Kaldi's ``mkgraph.sh``; every label convention below is the one
:mod:`asr.lm.wfst_decoder` reads back.

- **G** (words -> words): ``kaldilm.arpa2fst`` with ``#0`` on the back-off arcs; ``<s>``/``</s>``
  become the start state and the final weights. Its symbol table ``words.txt`` comes from the ARPA
  file (``<eps>`` 0, ``#0`` 1, then the words). Costs are ``-ln P``.
- **L** (tokens -> words): each word of ``words.txt`` spelled with the ASR units
  (``tokenizer.split`` of the normalised word), a loop through state 0: the first token outputs the
  word, the others epsilon. Input labels are the tokenizer's ids; disambiguation symbols ``#k`` are
  ids ``V + k`` (V = number of units): ``#0`` loops on state 0 (it passes G's back-off symbol, output
  word ``#0``), and a spelling that is a proper prefix of another, or shared by several words, ends
  with ``#1``, ``#2``, ... so that ``L o G`` can be determinised. Words that cannot be spelled with
  the units (or ``<unk>``, ``<s>``, ``</s>``) are left out. A character LM is the case where every
  word is one unit.
- **LG** = ``L o G``, determinised (``determinize_star`` in the log semiring, as mkgraph's
  ``fstdeterminizestar --use-log``) and minimised (``minimize_encoded``) *with* its disambiguation
  symbols, so G's back-off arcs stay single ``#0`` arcs out of each history state.
- **T** (CTC frames -> tokens): input labels are ``token id + 1`` (kaldi-decoder's ``DecodableCtc``
  reads column ``label - 1``; 0 is epsilon), output labels token ids, blank -> epsilon. ``"compact"``
  (default): state 0 loops on blank and every token has a state with a self-loop and an epsilon arc
  back to 0 (3V arcs; it also lets ``a a`` without a blank read as two ``a``, as WeNet's and k2's
  compact topologies do). ``"full"``: exactly CTC (a token after a different token, a repeat only
  after a blank; V + 1 states and about V^2 arcs, for small vocabularies). T also carries arcs
  ``<eps>:#k`` (on state 0 of the compact topology, which every path can reach between two tokens; on
  every state of the full one), so that composing T with LG turns LG's disambiguation symbols into
  input epsilons: **the back-off arcs stay epsilon arcs** of TLG, which the decoder follows like any
  arc, and the graph grows like the LM (about its number of n-grams), not like histories x vocabulary.
- ``backoff="rmepsilon"``: the earlier construction, kept for comparison (``tools/bench_lm.py``,
  tests): the disambiguation symbols of LG are replaced by epsilon and the epsilons removed before
  composing with T, which copies each back-off state's arcs into every history state that backs off
  to it (a character bigram over 2,000 units: 128 MB instead of 0.4 MB). The two graphs accept the
  same paths with the same best costs.

Writes ``OUT/TLG.fst`` (OpenFst binary), ``OUT/words.txt`` and ``OUT/tlg.json`` (the settings, the
units' count and checksum, for a clear error when decoding with another model's units; states, arcs,
build seconds).

    python -m asr.lm.tlg --arpa LM.arpa --units data/lang_char/units.txt --out data/lang_tlg
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from asr.data.text import normalize_text
from asr.lm.arpa import BOS, EOS, UNK
from asr.tokenizer import Tokenizer
from asr.utils.io import atomic_write

log = logging.getLogger(__name__)
SPECIAL_WORDS = {"<eps>", "#0", BOS, EOS, UNK}


def _kaldifst():
    try:
        import kaldifst
    except ImportError:
        raise ImportError("TLG graphs need kaldifst and kaldilm: pip install kaldifst kaldilm kaldi-decoder") from None
    return kaldifst


def read_symbols(path: str | os.PathLike) -> dict[str, int]:
    """Read a ``symbol id`` table (``words.txt``); errors name the line."""
    table: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit():
                raise ValueError(f"{path}:{lineno}: expected 'symbol id', got {line.strip()!r}")
            table[parts[0]] = int(parts[1])
    return table


def spell(words: dict[str, int], tokenizer: Tokenizer) -> dict[str, list[int]]:
    """word -> token ids for the words that the units can spell (special words left out)."""
    out = {}
    for word in words:
        if word in SPECIAL_WORDS or word.startswith("#"):
            continue
        text = normalize_text(word)
        if text and not tokenizer.oov(text):
            out[word] = tokenizer.encode(text)
    return out


def lexicon_fst_text(words: dict[str, int], spellings: dict[str, list[int]], num_units: int) -> tuple[str, int]:
    """L in OpenFst text format (module docstring), and the number of disambiguation symbols used (#0 included).

    Args:
        words: symbol table of G (word -> id), with ``#0``.
        spellings: word -> token ids, for the words to put in L.
        num_units: V; ``#k`` is input label ``V + k``.
    """
    by_spelling: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for word, ids in spellings.items():
        by_spelling[tuple(ids)].append(word)
    proper_prefixes = {s[:k] for s in by_spelling for k in range(1, len(s))}
    lines, next_state, max_disambig = [], 1, 0
    for spelling, group in by_spelling.items():
        needs = len(group) > 1 or spelling in proper_prefixes
        for k, word in enumerate(group, 1):
            inputs = list(spelling) + ([num_units + k] if needs else [])
            max_disambig = max(max_disambig, k if needs else 0)
            src = 0
            for i, label in enumerate(inputs):
                dst = 0 if i == len(inputs) - 1 else next_state
                if dst:
                    next_state += 1
                lines.append(f"{src} {dst} {label} {words[word] if i == 0 else 0}")
                src = dst
    lines.append(f"0 0 {num_units} {words['#0']}")  # G's back-off symbol passes through
    lines.append("0")
    return "\n".join(lines) + "\n", max_disambig + 1


def ctc_topology_text(num_units: int, blank: int = 0, topology: str = "compact", num_disambig: int = 0) -> str:
    """T in OpenFst text format (module docstring); input label = token id + 1, output = token id.

    Args:
        num_units: V, the tokenizer's units (blank included).
        blank: the blank's id.
        topology: ``"compact"`` or ``"full"``.
        num_disambig: K; arcs ``<eps>:#k`` (output ``V + k``, k = 0..K-1) are added on state 0
            (compact) or on every state (full).
    """
    tokens = [t for t in range(num_units) if t != blank]
    state = {t: i + 1 for i, t in enumerate(tokens)}  # state after emitting t; 0 = start / after blank
    lines = [f"0 0 {blank + 1} 0"]
    if topology == "full":
        for t in tokens:
            lines.append(f"0 {state[t]} {t + 1} {t}")
            lines.append(f"{state[t]} {state[t]} {t + 1} 0")
            lines.append(f"{state[t]} 0 {blank + 1} 0")
            lines.extend(f"{state[t]} {state[u]} {u + 1} {u}" for u in tokens if u != t)
        loops_on = range(len(tokens) + 1)
        lines.extend(str(s) for s in range(len(tokens) + 1))
    elif topology == "compact":
        for t in tokens:
            lines.append(f"0 {state[t]} {t + 1} {t}")
            lines.append(f"{state[t]} {state[t]} {t + 1} 0")
            lines.append(f"{state[t]} 0 0 0")
        loops_on = range(1)
        lines.append("0")
    else:
        raise ValueError(f"ctc_topology_text: topology must be full or compact, got {topology!r}")
    lines.extend(f"{s} {s} 0 {num_units + k}" for s in loops_on for k in range(num_disambig))
    return "\n".join(lines) + "\n"


def _remove_input_labels_from(fst_text: str, first: int) -> str:
    """Replace input labels >= ``first`` (disambiguation symbols) by epsilon in an FST's text."""
    out = []
    for line in fst_text.splitlines():
        f = line.split()
        if len(f) >= 4 and int(f[2]) >= first:
            f[2] = "0"
        out.append(" ".join(f))
    return "\n".join(out) + "\n"


def build_tlg(arpa: str | os.PathLike, tokenizer: Tokenizer, out_dir: str | os.PathLike, topology: str = "compact",
              backoff: str = "epsilon") -> Path:
    """Build ``OUT/TLG.fst``, ``OUT/words.txt`` and ``OUT/tlg.json`` (module docstring); return ``OUT/TLG.fst``.

    Args:
        arpa: the n-gram model (words, or the units themselves for a character LM).
        tokenizer: the ASR model's tokenizer (its units spell the words).
        out_dir: output folder.
        topology: ``"compact"`` or ``"full"`` CTC topology.
        backoff: ``"epsilon"`` (back-off arcs kept as epsilon arcs) or ``"rmepsilon"`` (the earlier
            construction, for comparison).

    Raises:
        ValueError: no word of the LM can be spelled with the units; a malformed ARPA file; an unknown
            topology or backoff.
    """
    kaldifst = _kaldifst()
    import kaldilm

    if topology not in ("compact", "full"):
        raise ValueError(f"build_tlg: topology must be compact or full, got {topology!r}")
    if backoff not in ("epsilon", "rmepsilon"):
        raise ValueError(f"build_tlg: backoff must be epsilon or rmepsilon, got {backoff!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        words_txt = Path(tmp) / "words.txt"
        g_text = kaldilm.arpa2fst(str(arpa), disambig_symbol="#0", write_symbol_table=str(words_txt),
                                  max_arpa_warnings=0)
        words = read_symbols(words_txt)
        words_bytes = words_txt.read_bytes()
    if "#0" not in words:
        raise ValueError(f"{arpa}: kaldilm wrote no #0 symbol (unexpected kaldilm version?)")
    g = kaldifst.compile(g_text)
    del g_text
    kaldifst.arcsort(g, sort_type="ilabel")

    spellings = spell(words, tokenizer)
    if not spellings:
        raise ValueError(f"{arpa}: none of its {len(words)} words can be spelled with the model's units")
    num_units = len(tokenizer)
    l_text, num_disambig = lexicon_fst_text(words, spellings, num_units)
    lex = kaldifst.compile(l_text)
    kaldifst.arcsort(lex, sort_type="olabel")

    lg = kaldifst.compose(lex, g)
    del g
    kaldifst.determinize_star(lg, use_log=True)
    kaldifst.minimize_encoded(lg)
    if backoff == "epsilon":
        t_disambig = num_disambig  # T passes #k as <eps>:#k, so they become input epsilons in TLG
    else:
        lg = kaldifst.compile(_remove_input_labels_from(lg.to_str(), num_units))
        kaldifst.rmepsilon(lg)
        t_disambig = 0
    kaldifst.arcsort(lg, sort_type="ilabel")

    t = kaldifst.compile(ctc_topology_text(num_units, tokenizer.blank_id, topology, t_disambig))
    kaldifst.arcsort(t, sort_type="olabel")
    tlg = kaldifst.compose(t, lg)
    kaldifst.arcsort(tlg, sort_type="ilabel")
    if tlg.num_states == 0:
        raise ValueError(f"{arpa}: the TLG graph is empty (no sentence of the LM can be spelled with the units)")

    write_fst(tlg, out_dir / "TLG.fst")
    with atomic_write(out_dir / "words.txt", "wb") as f:
        f.write(words_bytes)
    meta = {"arpa": str(arpa), "topology": topology, "backoff": backoff, "num_units": num_units,
            "units_sha1": units_checksum(tokenizer), "words": len(words), "words_in_lexicon": len(spellings),
            "disambig_symbols": num_disambig, "lg_states": lg.num_states, "states": tlg.num_states,
            "arcs": _num_arcs(tlg), "seconds": round(time.perf_counter() - start, 2)}
    with atomic_write(out_dir / "tlg.json") as f:
        json.dump(meta, f, ensure_ascii=False, indent=2)
    log.info("TLG: %s", meta)
    return out_dir / "TLG.fst"


def _num_arcs(fst) -> int:
    return sum(fst.num_arcs(s) for s in range(fst.num_states))


def write_fst(fst, path: Path) -> None:
    """Write an FST (kaldifst writes by path) to a temporary name beside ``path``, then rename it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if fst.write(tmp) is False:
            raise OSError(f"could not write {path}")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def units_checksum(tokenizer: Tokenizer) -> str:
    return hashlib.sha1("\n".join(tokenizer.units).encode("utf-8")).hexdigest()


def main(argv: list[str] | None = None) -> None:
    from asr.tokenizer.base import read_units
    from asr.tokenizer.char import CharTokenizer

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arpa", required=True, help="ARPA language model (words or characters)")
    p.add_argument("--units", required=True, help="units.txt of the ASR model (character units)")
    p.add_argument("--out", required=True, help="output folder for TLG.fst, words.txt, tlg.json")
    p.add_argument("--topology", choices=["compact", "full"], default="compact",
                   help="CTC topology: compact (3V arcs, default) or full (exact CTC, about V^2 arcs: small vocabularies)")
    p.add_argument("--backoff", choices=["epsilon", "rmepsilon"], default="epsilon",
                   help="epsilon: back-off arcs kept (default); rmepsilon: the earlier, larger graph (for comparison)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = build_tlg(args.arpa, CharTokenizer(read_units(args.units)), args.out, args.topology, args.backoff)
    except (ValueError, OSError, ImportError) as e:
        sys.exit(f"asr.lm.tlg: {e}")
    print(path)


if __name__ == "__main__":
    main()
