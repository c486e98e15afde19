"""CER-Hypo is jiwer's CER between the two hypotheses, the LM one as the reference."""
from __future__ import annotations

import random

import jiwer
import pytest

from asr.nst.cer_hypo import cer_hypo

CHARS = "今天天气很好我们去北京人工智能学习语音识别上海下雨"


def random_pairs(n: int, seed: int = 0) -> tuple[dict[str, str], dict[str, str]]:
    """LM hypotheses and plain ones made from them by random substitutions, deletions and insertions."""
    rng = random.Random(seed)
    lm, plain = {}, {}
    for i in range(n):
        ref = "".join(rng.choice(CHARS) for _ in range(rng.randint(1, 15)))
        hyp = []
        for ch in ref:
            op = rng.random()
            if op < 0.1:
                continue  # deletion
            hyp.append(rng.choice(CHARS) if op < 0.25 else ch)
            while rng.random() < 0.1:  # insertions
                hyp.append(rng.choice(CHARS))
        lm[f"u{i}"], plain[f"u{i}"] = ref, "".join(hyp)
    lm["same"], plain["same"] = "上海下雨", "上海下雨"
    lm["empty_plain"], plain["empty_plain"] = "上海下雨", ""
    lm["longer"], plain["longer"] = "雨", "上海下雨了"  # CER above 1
    return lm, plain


def test_cer_hypo_equals_jiwer_cer_of_the_two_hypotheses():
    lm, plain = random_pairs(300)
    scores = cer_hypo(lm, plain)
    assert list(scores) == list(lm)
    for u in lm:
        assert scores[u] == pytest.approx(jiwer.cer(lm[u], plain[u]), abs=1e-12), u
    assert scores["same"] == 0 and scores["longer"] > 1


def test_cer_hypo_refuses_an_empty_lm_hypothesis_or_a_missing_plain_one():
    with pytest.raises(ValueError, match="empty LM hypotheses"):
        cer_hypo({"a": "上海", "b": " "}, {"a": "上海", "b": "雨"})
    with pytest.raises(ValueError, match="no plain hypothesis"):
        cer_hypo({"a": "上海", "b": "雨"}, {"a": "上海"})
