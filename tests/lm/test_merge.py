import copy
import subprocess
import sys
from pathlib import Path

import pytest

from asr.lm.arpa import read_arpa, write_arpa
from asr.lm.estimate import estimate_arpa
from asr.lm.merge import interpolate, union_merge
from asr.lm.normalise import context_sums, max_normalisation_error, recompute_backoffs
from tests.lm.conftest import random_sentences

ROOT = Path(__file__).resolve().parents[2]


def assert_normalised(model, tol=1e-4):
    """Every history's P(w | h), summed by querying every word, is 1; the fast formula agrees."""
    exhaustive, fast = context_sums(model, exhaustive=True), context_sums(model)
    worst = max(exhaustive, key=lambda h: abs(exhaustive[h] - 1))
    assert abs(exhaustive[worst] - 1) < tol, (worst, exhaustive[worst])
    for h, total in exhaustive.items():
        assert fast[h] == pytest.approx(total, abs=tol)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_estimated_models_are_normalised(order):
    assert_normalised(estimate_arpa(random_sentences("abcde", 60, seed=order), order))


def test_recomputing_backoffs_repairs_wrong_weights(domain_b):
    model = copy.deepcopy(domain_b)
    for n in range(model.order - 1):
        for h in model.bow[n]:
            model.bow[n][h] += 0.3
    assert max_normalisation_error(model, exhaustive=True)[0] > 1e-2
    recompute_backoffs(model)
    assert_normalised(model, tol=1e-9)


@pytest.mark.parametrize("combine", [union_merge, lambda a, b: interpolate(a, b, 0.3)], ids=["union", "interpolate"])
def test_merged_models_of_different_orders_are_normalised(domain_a, domain_b, combine, tmp_path):
    merged = combine(domain_a, domain_b)
    assert merged.order == 5
    assert set(merged.vocab) == set(domain_a.vocab) | set(domain_b.vocab)
    for n in range(5):
        union = {g for m in (domain_a, domain_b) if n < m.order for g in m.prob[n]}
        assert set(merged.prob[n]) == union
    assert_normalised(merged)
    assert_normalised(read_arpa(write_arpa(merged, tmp_path / "m.arpa")))  # also after the ARPA round trip


def test_union_keeps_what_only_one_model_says(domain_a, domain_b):
    merged = union_merge(domain_a, domain_b)
    # histories longer than the 3-gram's: the 5-gram's probabilities, unchanged
    for n in (3, 4):
        for g, p in domain_b.prob[n].items():
            assert merged.prob[n][g] == pytest.approx(p, abs=1e-12)
    # a trigram whose history only the 3-gram model continues
    only_a = [g for g in domain_a.prob[2] if not any(k[:2] == g[:2] for k in domain_b.prob[2])]
    assert only_a
    for g in only_a:
        assert merged.prob[2][g] == pytest.approx(domain_a.prob[2][g], abs=1e-12)


def test_union_takes_the_max_then_renormalises(domain_a, domain_b):
    merged = union_merge(domain_a, domain_b)
    shared_h = [h for h in domain_a.prob[1] if any(g[:2] == h for g in domain_a.prob[2])
                and any(g[:2] == h for g in domain_b.prob[2])]
    assert shared_h
    for h in shared_h:
        words = {g[2] for m in (domain_a, domain_b) for g in m.prob[2] if g[:2] == h}
        q = {w: max(10 ** m.prob[2][h + (w,)] for m in (domain_a, domain_b) if h + (w,) in m.prob[2]) for w in words}
        ratio = {w: 10 ** merged.prob[2][h + (w,)] / q[w] for w in words}  # the same 1/Z for every word
        assert max(ratio.values()) == pytest.approx(min(ratio.values()), rel=1e-9)
        assert max(ratio.values()) <= 1 + 1e-12


def test_union_is_symmetric(domain_a, domain_b):
    ab, ba = union_merge(domain_a, domain_b), union_merge(domain_b, domain_a)
    for n in range(ab.order):
        for g, p in ab.prob[n].items():
            assert ba.prob[n][g] == pytest.approx(p, abs=1e-9)


def test_interpolation_is_the_mixture_on_listed_ngrams(domain_a, domain_b):
    lam = 0.3
    mixed = interpolate(domain_a, domain_b, lam)
    vocab_a, vocab_b = set(domain_a.vocab), set(domain_b.vocab)
    for n in range(mixed.order):
        for g in list(mixed.prob[n])[:200]:
            h, w = g[:-1], g[-1]
            if w == "<s>":
                continue
            pa = 10 ** domain_a.log10_prob(h, w) if w in vocab_a else 0.0
            pb = 10 ** domain_b.log10_prob(h, w) if w in vocab_b else 0.0
            assert 10 ** mixed.prob[n][g] == pytest.approx(lam * pa + (1 - lam) * pb, rel=1e-9)


def test_interpolating_a_model_with_itself_gives_the_model(domain_a):
    same = interpolate(domain_a, domain_a, 0.4)
    for h in [(), ("a",), ("a", "b"), ("<s>", "c"), ("g", "g")]:
        for w in domain_a.vocab[1:]:
            assert same.log10_prob(h, w) == pytest.approx(domain_a.log10_prob(h, w), abs=1e-9)


def run_tool(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "merge_arpa.py"), *map(str, args)],
                          capture_output=True, text=True)


def test_merge_tool_writes_a_normalised_model(domain_a, domain_b, tmp_path):
    a, b = write_arpa(domain_a, tmp_path / "a.arpa"), write_arpa(domain_b, tmp_path / "b.arpa")
    for rule in ("union", "interpolate"):
        r = run_tool(a, b, "--rule", rule, "--out", tmp_path / f"{rule}.arpa", "--check")
        assert r.returncode == 0, r.stderr
        assert_normalised(read_arpa(tmp_path / f"{rule}.arpa"))


def test_merge_tool_reports_the_bad_line_and_writes_nothing(domain_a, domain_b, tmp_path):
    a, b = write_arpa(domain_a, tmp_path / "a.arpa"), write_arpa(domain_b, tmp_path / "b.arpa")
    lines = b.read_text(encoding="utf-8").splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("\\2-grams:")) + 3
    lines[i] = "-0.5"  # a 2-gram line without its words
    b.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run_tool(a, b, "--out", tmp_path / "out" / "m.arpa")
    assert r.returncode != 0
    assert f"{b}:{i + 1}:" in r.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
