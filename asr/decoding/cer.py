"""Character error rate (CER) with per-utterance counts and alignments.

``CER = (S + D + I) / N`` over the whole test set, where S, D, I are the substitutions,
deletions and insertions of jiwer's minimum-edit character alignment of each utterance and N
the number of reference characters. Texts are compared as given: normalise them first
(``asr.data.text.normalize_text``); jiwer only strips leading and trailing whitespace.
"""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Mapping

import jiwer

from asr.utils.io import atomic_write

_OP = {"equal": "=", "substitute": "S", "delete": "D", "insert": "I"}


@dataclass
class ErrorStats:
    """Edit counts against ``ref_len`` reference characters."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_len: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def cer(self) -> float:
        """errors / ref_len; for an empty reference, 0 without errors and inf with some."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.ref_len

    def __add__(self, other: ErrorStats) -> ErrorStats:
        return ErrorStats(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.ref_len + other.ref_len,
        )


@dataclass
class UttErrors:
    """One scored utterance; ``alignment`` lists (ref char, hyp char, op), op in ``=SDI``, '' for a gap."""

    utt_id: str
    ref: str
    hyp: str
    stats: ErrorStats
    alignment: list[tuple[str, str, str]]


@dataclass
class CERReport:
    """Per-utterance results (in reference order), their total, and the odd cases by id."""

    utts: list[UttErrors]
    total: ErrorStats
    missing: list[str] = field(default_factory=list)  # no hypothesis: scored as all deletions
    empty_refs: list[str] = field(default_factory=list)  # empty reference: its insertions still count
    extra: list[str] = field(default_factory=list)  # hypothesis without reference: not scored


def compute_cer(refs: Mapping[str, str], hyps: Mapping[str, str]) -> CERReport:
    """Score hypotheses against references, both keyed by utterance id.

    Args:
        refs: utterance id -> reference text; every one is scored.
        hyps: utterance id -> hypothesis text; a missing id counts as an empty hypothesis.

    Returns:
        The report (see :class:`CERReport`).
    """
    ids = list(refs)
    hyp_texts = [hyps.get(i, "") for i in ids]
    utts = []
    if ids:
        out = jiwer.process_characters([refs[i] for i in ids], hyp_texts)
        for utt_id, hyp, ref_chars, hyp_chars, chunks in zip(
            ids, hyp_texts, out.references, out.hypotheses, out.alignments
        ):
            alignment = _alignment(ref_chars, hyp_chars, chunks)
            ops = [op for _, _, op in alignment]
            stats = ErrorStats(ops.count("S"), ops.count("D"), ops.count("I"), len(ref_chars))
            utts.append(UttErrors(utt_id, refs[utt_id], hyp, stats, alignment))
    return CERReport(
        utts=utts,
        total=sum((u.stats for u in utts), ErrorStats()),
        missing=[i for i in ids if i not in hyps],
        empty_refs=[u.utt_id for u in utts if u.stats.ref_len == 0],
        extra=[i for i in hyps if i not in refs],
    )


def _alignment(ref: list[str], hyp: list[str], chunks: list[jiwer.AlignmentChunk]) -> list[tuple[str, str, str]]:
    """Expand jiwer's alignment chunks into one (ref char, hyp char, op) triple per position."""
    pairs = []
    for chunk in chunks:
        op = _OP[chunk.type]
        r = ref[chunk.ref_start_idx : chunk.ref_end_idx]
        h = hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]
        n = max(len(r), len(h))
        pairs += [(r[k] if r else "", h[k] if h else "", op) for k in range(n)]
    return pairs


def format_alignment(alignment: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    """Render an alignment as REF, HYP and OPS lines with aligned columns.

    Gaps are ``*``; correct positions have a blank op; CJK characters count as two columns.
    """
    rows: tuple[list[str], list[str], list[str]] = ([], [], [])
    for ref, hyp, op in alignment:
        cells = (ref or "*", hyp or "*", "" if op == "=" else op)
        width = max(_width(c) for c in cells)
        for row, cell in zip(rows, cells):
            row.append(cell + " " * (width - _width(cell)))
    return tuple(" ".join(row).rstrip() for row in rows)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def summary(report: CERReport) -> dict:
    """Totals of a report as a JSON-ready dict (cer is a fraction, not a percentage)."""
    total = report.total
    return {
        "cer": total.cer,
        "substitutions": total.substitutions,
        "deletions": total.deletions,
        "insertions": total.insertions,
        "ref_chars": total.ref_len,
        "utterances": len(report.utts),
        "utterances_with_errors": sum(u.stats.errors > 0 for u in report.utts),
        "missing": len(report.missing),
        "empty_refs": len(report.empty_refs),
        "extra": len(report.extra),
    }


def focus_stats(utt: UttErrors, chars: AbstractSet[str]) -> ErrorStats:
    """One utterance's errors restricted to ``chars`` (e.g. characters rare in training).

    Substitutions and deletions count at reference positions holding one of ``chars``, insertions when the
    inserted character is one of them; ``ref_len`` is how many of the reference's characters are in ``chars``.
    A substitution *into* one of ``chars`` at another reference character is not counted.
    """
    ops = [op for ref, hyp, op in utt.alignment if (hyp if op == "I" else ref) in chars]
    ref_len = sum(ref in chars for ref, _, op in utt.alignment if op != "I")
    return ErrorStats(ops.count("S"), ops.count("D"), ops.count("I"), ref_len)


def per_utterance(report: CERReport, focus: AbstractSet[str] = frozenset(),
                  fields: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict]:
    """One JSON-ready row of counts per utterance (what a paired bootstrap over utterances resamples).

    Rows: ``id, ref_chars, substitutions, deletions, insertions``, and with ``focus``, ``focus_ref_chars`` and
    ``focus_errors`` (:func:`focus_stats`), then ``fields[id]`` (facts about the utterance that split a set into
    subsets, e.g. test_noisy's ``snr_db``).
    """
    rows = []
    for u in report.utts:
        row = {"id": u.utt_id, "ref_chars": u.stats.ref_len, "substitutions": u.stats.substitutions,
               "deletions": u.stats.deletions, "insertions": u.stats.insertions}
        if focus:
            f = focus_stats(u, focus)
            row.update(focus_ref_chars=f.ref_len, focus_errors=f.errors)
        row.update((fields or {}).get(u.utt_id, {}))
        rows.append(row)
    return rows


def write_error_file(report: CERReport, path: str | os.PathLike) -> None:
    """Write the totals, then every utterance (id, counts, ref, hyp, aligned view), atomically."""
    total = report.total
    with atomic_write(path) as f:
        f.write(
            f"CER {100 * total.cer:.2f}% = (S {total.substitutions} + D {total.deletions}"
            f" + I {total.insertions}) / N {total.ref_len}, {len(report.utts)} utterances\n"
        )
        for name in ("missing", "empty_refs", "extra"):
            ids = getattr(report, name)
            if ids:
                f.write(f"{name} ({len(ids)}): {' '.join(ids)}\n")
        for u in report.utts:
            s = u.stats
            ref_line, hyp_line, op_line = format_alignment(u.alignment)
            f.write(
                f"\n{u.utt_id} S={s.substitutions} D={s.deletions} I={s.insertions} N={s.ref_len}\n"
                f"ref: {u.ref}\nhyp: {u.hyp}\nREF: {ref_line}\nHYP: {hyp_line}\nOPS: {op_line}\n"
            )


_UTT_HEADER = re.compile(r"^(\S+) S=\d+ D=\d+ I=\d+ N=\d+\nref: (.*)\nhyp: (.*)$", re.M)


def read_error_file(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, str]]:
    """(refs, hyps) keyed by utterance id from an ``errors.txt`` written by :func:`write_error_file`."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    refs, hyps = {}, {}
    for utt, ref, hyp in _UTT_HEADER.findall(text):
        refs[utt], hyps[utt] = ref, hyp
    if not refs:
        raise ValueError(f"{path}: no utterances found (is it an errors.txt of asr.decode?)")
    return refs, hyps
