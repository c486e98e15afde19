import jiwer
import pytest

from asr.decoding.cer import compute_cer, format_alignment, summary, write_error_file

REFS = {
    "u1": "今天天气很好",
    "u2": "我们去北京",  # substitution + deletion
    "u3": "人工智能",  # insertions
    "u4": "你好世界",  # missing hypothesis
    "u5": "",  # empty reference
    "u6": "ABC语音",
}
HYPS = {
    "u1": "今天天气很好",
    "u2": "我门去京",
    "u3": "人工智能啊啊",
    "u5": "嗯",
    "u6": "AC语言音",
    "x9": "多余",  # no reference
}


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance by dynamic programming."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_matches_jiwer_and_edit_distance():
    report = compute_cer(REFS, HYPS)
    ids = list(REFS)
    assert report.total.cer == pytest.approx(jiwer.cer([REFS[i] for i in ids], [HYPS.get(i, "") for i in ids]))
    assert [u.utt_id for u in report.utts] == ids
    for u in report.utts:
        assert u.stats.errors == edit_distance(u.ref, u.hyp)
        assert u.stats.ref_len == len(u.ref)
        assert "".join(r for r, _, _ in u.alignment) == u.ref and "".join(h for _, h, _ in u.alignment) == u.hyp
    for name in ("substitutions", "deletions", "insertions", "ref_len"):
        assert getattr(report.total, name) == sum(getattr(u.stats, name) for u in report.utts)


def test_odd_cases_are_listed_and_counted():
    report = compute_cer(REFS, HYPS)
    by_id = {u.utt_id: u.stats for u in report.utts}
    assert report.missing == ["u4"] and by_id["u4"].deletions == len(REFS["u4"]) == by_id["u4"].errors
    assert report.empty_refs == ["u5"] and by_id["u5"].insertions == len(HYPS["u5"])
    assert report.extra == ["x9"]
    assert summary(report)["utterances"] == len(REFS)
    assert compute_cer({}, {}).total.errors == 0


def test_error_file_and_aligned_view(tmp_path):
    report = compute_cer(REFS, HYPS)
    path = tmp_path / "errors.txt"
    write_error_file(report, path)
    text = path.read_text(encoding="utf-8")
    for u in report.utts:
        assert f"{u.utt_id} S={u.stats.substitutions} D={u.stats.deletions} I={u.stats.insertions}" in text
    alignment = [("我", "我", "="), ("们", "门", "S"), ("北", "", "D"), ("", "A", "I")]
    ref_line, hyp_line, op_line = format_alignment(alignment)
    assert ref_line.split() == ["我", "们", "北", "*"] and hyp_line.split() == ["我", "门", "*", "A"]
    assert op_line.split() == ["S", "D", "I"]
    assert op_line.index("S") == 3  # two-column CJK characters plus one space: ops sit under their column
