import subprocess
import sys
from pathlib import Path

import pytest

from asr.lm.arpa import read_arpa
from asr.lm.normalise import context_sums
from asr.lm.text import tokenise
from train_lm import find_kenlm_program  # tools/ is on sys.path (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
LINES = ["北京 天气 很好", "上海 天气 不错", "今天 北京 天气 很好", "上海 很好", "明天 上海 下雨",
         "今天 天气 不错"] * 5


def train(tmp_path, *args):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return subprocess.run([sys.executable, str(ROOT / "tools" / "train_lm.py"), "--text", str(text), *args],
                          capture_output=True, text=True)


def assert_normalised(model, tol=1e-4):
    sums = context_sums(model, exhaustive=True)
    assert max(abs(s - 1) for s in sums.values()) < tol


@pytest.mark.parametrize("unit", ["char", "word"])
def test_python_estimator_trains_on_the_units(tmp_path, unit):
    out = tmp_path / f"{unit}.arpa"
    r = train(tmp_path, "--order", "3", "--unit", unit, "--out", str(out), "--estimator", "python",
              "--discount-fallback")
    assert r.returncode == 0, r.stderr
    assert "python modified Kneser-Ney" in r.stdout
    model = read_arpa(out)
    expected = {w for line in LINES for w in tokenise(line, unit)}
    assert set(out.with_suffix(".vocab").read_text(encoding="utf-8").split()) == expected
    assert expected <= set(model.vocab)
    assert model.order == 3
    assert_normalised(model)


@pytest.mark.skipif(find_kenlm_program("lmplz") is None,
                    reason="lmplz not found: bash tools/build_kenlm.sh builds it (needs cmake, Boost, zlib)")
@pytest.mark.parametrize("order", [2, 4])
def test_lmplz_trains_a_normalised_model(tmp_path, order):
    out = tmp_path / "lm.arpa"
    r = train(tmp_path, "--order", str(order), "--unit", "char", "--out", str(out), "--discount-fallback")
    assert r.returncode == 0, r.stderr
    model = read_arpa(out)
    assert model.order == order
    assert {w for line in LINES for w in tokenise(line, "char")} <= set(model.vocab)
    assert_normalised(model)
    if find_kenlm_program("build_binary") is not None:
        r = train(tmp_path, "--order", str(order), "--out", str(out), "--discount-fallback", "--binary")
        assert r.returncode == 0, r.stderr
        assert out.with_suffix(".bin").stat().st_size > 0


def test_auto_estimator_is_lmplz_when_found_else_python(tmp_path):
    out = tmp_path / "lm.arpa"
    r = train(tmp_path, "--order", "2", "--out", str(out), "--discount-fallback")
    assert r.returncode == 0, r.stderr
    assert ("lmplz" if find_kenlm_program("lmplz") else "python modified Kneser-Ney") in r.stdout


def test_tiny_text_without_discount_fallback_is_a_one_line_error(tmp_path):
    r = train(tmp_path, "--order", "3", "--out", str(tmp_path / "x.arpa"), "--estimator", "python")
    assert r.returncode != 0
    assert r.stderr.startswith("train_lm.py: modified Kneser-Ney:") and "--discount-fallback" in r.stderr


def test_missing_text_is_a_one_line_error(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "train_lm.py"), "--text", str(tmp_path / "no.txt"),
                        "--order", "3", "--out", str(tmp_path / "x.arpa")], capture_output=True, text=True)
    assert r.returncode != 0 and "no.txt not found" in r.stderr
