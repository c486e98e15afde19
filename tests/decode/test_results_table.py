"""tools/results_table.py on fake decode folders."""
from __future__ import annotations

import json

import pytest
import results_table


def fake_decode_dir(root, name: str, cers: dict[tuple[str, str], float], failed: int = 0):
    decode = root / name / "decode"
    for (split, mode), cer in cers.items():
        (decode / split / mode).mkdir(parents=True)
        (decode / split / mode / "summary.json").write_text(json.dumps({"mode": mode, "cer": cer, "failed": failed}))
    return decode


def test_one_row_per_experiment_one_dev_test_cell_per_mode(tmp_path, capsys):
    a = fake_decode_dir(tmp_path, "conformer", {
        ("dev", "attention_rescoring"): 0.0451, ("test", "attention_rescoring"): 0.05,
        ("dev", "ctc_greedy_search"): 0.052, ("test", "ctc_greedy_search"): 0.0567})
    b = fake_decode_dir(tmp_path, "transformer", {("test", "attention"): 0.061}, failed=2)
    out = tmp_path / "table.md"
    assert results_table.main([str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_text() == printed
    lines = printed.splitlines()
    header = lines.index("| Experiment | ctc_greedy_search | attention | attention_rescoring |")
    assert lines[header + 2] == "| conformer | 5.20 / 5.67 | - / - | 4.51 / 5.00 |"
    assert lines[header + 3] == "| transformer | - / - | - / 6.10* | - / - |"
    assert "failed.tsv" in lines[-1]


def test_a_folder_without_summaries_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no SPLIT/MODE/summary.json"):
        results_table.main([str(tmp_path)])
