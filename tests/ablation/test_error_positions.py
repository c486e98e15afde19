"""tools/error_positions.py: errors placed in the right part of the reference, nothing lost, errors.txt read back."""
from __future__ import annotations

import random

import pytest

import error_positions as ep
from asr.decoding.cer import compute_cer, read_error_file, write_error_file


def test_errors_land_in_the_part_of_the_reference_where_they_are():
    # 6 reference characters, 3 parts of 2: "ab" | "cd" | "ef"
    counts = ep.error_positions({"u": "abcdef"}, {"u": "abcd"}, 3)
    assert counts == {"N": [2, 2, 2], "D": [0, 0, 2], "I": [0, 0, 0], "S": [0, 0, 0]}
    counts = ep.error_positions({"u": "abcdef"}, {"u": "xabXdef"}, 3)
    assert counts["I"] == [1, 0, 0] and counts["S"] == [0, 1, 0] and counts["D"] == [0, 0, 0]
    counts = ep.error_positions({"u": "abcdef"}, {"u": "abcdefyy"}, 3)  # after the last character: last part
    assert counts["I"] == [0, 0, 2]


def test_the_parts_add_up_to_the_cer_counts_on_random_texts():
    rng = random.Random(0)
    alphabet = "甲乙丙丁戊己庚辛"
    refs, hyps = {}, {}
    for i in range(60):
        ref = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        hyp = list(ref)
        for _ in range(rng.randint(0, 8)):
            k = rng.randrange(len(hyp) + 1)
            kind = rng.choice("DIS")
            if kind == "I" or not hyp:
                hyp.insert(k, rng.choice(alphabet))
            elif kind == "D":
                del hyp[min(k, len(hyp) - 1)]
            else:
                hyp[min(k, len(hyp) - 1)] = rng.choice(alphabet)
        refs[f"u{i}"], hyps[f"u{i}"] = ref, "".join(hyp)
    total = compute_cer(refs, hyps).total
    for parts in (1, 3, 7):
        counts = ep.error_positions(refs, hyps, parts)
        assert sum(counts["N"]) == total.ref_len
        assert sum(counts["D"]) == total.deletions
        assert sum(counts["I"]) == total.insertions
        assert sum(counts["S"]) == total.substitutions
    one = ep.error_positions(refs, hyps, 1)
    assert ep.rates(one)["D"][0] == pytest.approx(100 * total.deletions / total.ref_len)


def test_errors_txt_is_read_back_as_written(tmp_path):
    refs = {"a": "今天天气很好", "b": "去年房价下降", "c": "研究人员"}
    hyps = {"a": "今天天气好", "b": "去年房价大幅下降"}  # c has no hypothesis: all deletions
    write_error_file(compute_cer(refs, hyps), tmp_path / "errors.txt")
    got_refs, got_hyps = read_error_file(tmp_path / "errors.txt")
    assert got_refs == refs
    assert got_hyps == {**hyps, "c": ""}
    assert ep.error_positions(got_refs, got_hyps, 2) == ep.error_positions(refs, hyps, 2)


def test_a_folder_without_errors_txt_is_skipped_and_named(tmp_path, capsys):
    good = tmp_path / "good"
    good.mkdir()
    write_error_file(compute_cer({"a": "你好"}, {"a": "你"}), good / "errors.txt")
    assert ep.main([str(good), str(tmp_path / "missing"), "--out-md", str(tmp_path / "t.md")]) == 0
    err = capsys.readouterr().err
    assert "missing" in err and "1 of 2 folders skipped" in err
    assert "good" in (tmp_path / "t.md").read_text()
