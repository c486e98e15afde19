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


def test_focus_stats_on_every_character_is_the_whole_score_and_on_none_is_nothing():
    from asr.decoding.cer import ErrorStats, focus_stats

    report = compute_cer(REFS, HYPS)
    everything = set("".join(REFS.values()) + "".join(HYPS.values()))
    for u in report.utts:
        assert focus_stats(u, everything) == u.stats
        assert focus_stats(u, set()) == ErrorStats()


def test_focus_stats_counts_what_happens_to_the_focus_characters():
    from asr.decoding.cer import focus_stats

    # ref 我们去北京 -> hyp 我门去京: 们->门 substituted, 北 deleted; 人工智能 -> 人工智能啊啊: 2 insertions
    report = compute_cer({"a": "我们去北京", "b": "人工智能"}, {"a": "我门去京", "b": "人工智能啊啊"})
    a, b = report.utts
    assert (focus_stats(a, {"们", "京"}).substitutions, focus_stats(a, {"们", "京"}).ref_len) == (1, 2)
    assert focus_stats(a, {"北"}).deletions == 1 and focus_stats(a, {"北"}).cer == 1.0
    assert focus_stats(a, {"门"}).errors == 0  # a substitution into a focus character is not counted
    assert focus_stats(b, {"啊"}).insertions == 2 and focus_stats(b, {"啊"}).ref_len == 0
    assert focus_stats(b, {"人"}).cer == 0.0


def test_per_utterance_rows_add_up_to_the_total():
    from asr.decoding.cer import per_utterance

    report = compute_cer(REFS, HYPS)
    rows = per_utterance(report, {"们", "京", "啊"})
    assert [r["id"] for r in rows] == list(REFS)
    for key, total in (("ref_chars", report.total.ref_len), ("substitutions", report.total.substitutions),
                       ("deletions", report.total.deletions), ("insertions", report.total.insertions)):
        assert sum(r[key] for r in rows) == total
    assert sum(r["focus_errors"] for r in rows) == 1 + 2 and sum(r["focus_ref_chars"] for r in rows) == 2
    assert "focus_errors" not in per_utterance(report)[0]
