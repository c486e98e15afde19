"""Small LM texts and models made by the tests themselves (random sentences over tiny vocabularies)."""
from __future__ import annotations

import random

import pytest

from asr.lm.estimate import estimate_arpa


def random_sentences(alphabet: str, count: int, seed: int, max_len: int = 8) -> list[list[str]]:
    """``count`` sentences of 1..max_len symbols drawn from ``alphabet``, with some repeated bigrams."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words = [rng.choice(alphabet) for _ in range(rng.randint(1, max_len))]
        if rng.random() < 0.5:  # a recurring pattern, so that higher orders have something to learn
            words[rng.randrange(len(words)):] = list(alphabet[:3])
        out.append(words)
    return out


@pytest.fixture(scope="package")
def domain_a():
    """A 3-gram over a..g."""
    return estimate_arpa(random_sentences("abcdefg", 150, seed=1), order=3)


@pytest.fixture(scope="package")
def domain_b():
    """A 5-gram over e..k (overlapping vocabulary)."""
    return estimate_arpa(random_sentences("efghijk", 150, seed=2), order=5)
