"""News-like Mandarin sentences from a small probabilistic grammar, with a homophone-free character inventory.

The grammar picks a topic, then a template (time / place / subject / adverb / verb phrase / number phrase
slots), then words from topic-conditioned word classes with Zipf-like weights, so the text has real n-gram
structure. Before generating, :func:`build_lexicon` prunes the word lists so that every tone-numbered syllable
belongs to exactly one character: the text is recoverable from the sound.
"""
from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np
from pypinyin import Style, lazy_pinyin

from synth import lexicon as lx

MIN_CHARS, MAX_CHARS = 6, 20

# (weight, slots): "[X]" is optional (kept with probability 1/2), "A|B" picks one, plain Chinese is literal.
TEMPLATES = [
    (3, "[TIME] [PLACE] SUBJ [ADV] ACTION"),
    (2, "[TIME] PLACE 的 METRIC 同比 RISE|FALL 了 百分之 PERCENT"),
    (2, "TIME [PLACE] SUBJ 共 COUNT"),
    (2, "SOURCE SAY [TIME] SUBJ 将 ACTION"),
    (1, "PLACE METRIC [DEGREE] RISE|FALL"),
    (1, "SUBJ 在 PLACE ACTION"),
    (1, "SOURCE SAY METRIC 将 [DEGREE] RISE|FALL"),
]
TOPIC_WEIGHTS = {"housing": 3, "economy": 2, "transport": 1, "tech": 1, "education": 1, "sports": 1, "weather": 1}
# The everyday domain (synth.lexicon.DAILY_*): other sentence shapes, other words, questions and suggestions.
DAILY_TEMPLATES = [
    (3, "[TIME] PERSON [ADV] ACTION"),
    (2, "[TIME] PERSON 想 去 PLACE ACTION"),
    (2, "请问 PLACE 在 哪里"),
    (2, "[TIME] PERSON 在 PLACE 买 了 COUNT"),
    (1, "PLACE 的 THING 很 ADJ"),
    (1, "[TIME] 我们 去 PLACE 吧"),
    (1, "PERSON [ADV] 想 ACTION 吗"),
]
DAILY_TOPIC_WEIGHTS = {"food": 2, "shopping": 2, "travel": 1, "health": 1, "home": 1}
# domain -> (templates, topic weights); the word lists are synth.lexicon.DOMAINS
DOMAINS = {"news": (TEMPLATES, TOPIC_WEIGHTS), "daily": (DAILY_TEMPLATES, DAILY_TOPIC_WEIGHTS)}


def pinyin(words: list[str]) -> list[list[str]]:
    """Tone-numbered pinyin (neutral tone 5, ü as v) of each word, read word by word as pypinyin does.

    Returns:
        One list of syllables per word, e.g. ``[["zhong1", "guo2"], ["de5"]]``.
    """
    flat = lazy_pinyin(words, style=Style.TONE3, neutral_tone_with_five=True)
    if len(flat) != sum(map(len, words)):
        raise ValueError(f"not all characters are Chinese in {' '.join(words)!r}")
    out, i = [], 0
    for w in words:
        out.append(flat[i:i + len(w)])
        i += len(w)
    return out


def homophone_rate(char_syllable: dict[str, str]) -> float:
    """Share of characters whose syllable is also the syllable of another character."""
    counts = Counter(char_syllable.values())
    return sum(counts[s] > 1 for s in char_syllable.values()) / max(len(char_syllable), 1)


@dataclass
class Lexicon:
    """Word lists after pruning, and the one-to-one character/syllable table they use.

    Attributes:
        common: shared word classes (``TIME``, ``PLACE``, ...) -> phrases.
        topics: topic -> topic word classes (``SUBJ``, ``ACTION``, ``METRIC``, ``COUNT``) -> phrases.
        char_syllable: every character the generator can write -> its tone-numbered syllable.
        dropped: phrases removed because a character was a homophone, polyphone or unspeakable.
        domain: the text domain (:data:`DOMAINS`): its templates and topic weights.
    """

    common: dict[str, list[str]]
    topics: dict[str, dict[str, list[str]]]
    char_syllable: dict[str, str]
    dropped: list[str]
    domain: str = "news"


def build_lexicon(unspeakable: Callable[[list[str]], list[str]] | None = None, domain: str = "news") -> Lexicon:
    """Prune :mod:`synth.lexicon` so that no two characters share a tone-numbered syllable.

    Each character has one reading, the one pypinyin gives it alone; words that read it otherwise in context
    (一 in 进一步) are dropped. Phrases are then admitted greedily, core words and number characters first,
    then round-robin over the word classes (so every class keeps its first-listed phrases): a phrase is kept
    only if none of its characters' syllables already belongs to another character.

    Args:
        unspeakable: optional check returning the syllables the synthesiser cannot read (they are dropped).
        domain: which word lists of :data:`synth.lexicon.DOMAINS` (news: the demo corpus; daily: everyday speech).

    Raises:
        ValueError: if a core word or number character is dropped, or a word class keeps fewer than 2 phrases.
    """
    if domain not in lx.DOMAINS:
        raise ValueError(f"unknown text domain {domain!r}; expected one of {sorted(lx.DOMAINS)}")
    core_words, shared, topic_classes = lx.DOMAINS[domain]
    classes = dict(shared)
    classes |= {f"{topic}.{name}": cls for topic, tcls in topic_classes.items() for name, cls in tcls.items()}
    core = core_words + list(lx.NUMBER_CHARS)
    words = list(dict.fromkeys(core + [w for cls in classes.values() for p in cls for w in p.split() if w != "_"]))
    chars = list(dict.fromkeys("".join(words)))
    alone = dict(zip(chars, (s for (s,) in pinyin(chars))))
    in_context = dict(zip(words, pinyin(words)))
    bad_syllables = set(unspeakable(sorted(set(alone.values())))) if unspeakable else set()

    owner: dict[str, str] = {}  # syllable -> the one character written for it

    def admit(phrase: str) -> str | None:
        """Claim the phrase's syllables; return why it cannot be admitted, or None."""
        claims: dict[str, str] = {}
        for word in phrase.split():
            if word == "_":
                continue
            if in_context[word] != [alone[c] for c in word]:
                return f"{word} reads {' '.join(in_context[word])} in context"
            for char in word:
                syl = alone[char]
                if syl in bad_syllables:
                    return f"eSpeak cannot read {syl} ({char})"
                if owner.get(syl, char) != char or claims.get(syl, char) != char:
                    return f"{char} {syl} is already {owner.get(syl) or claims[syl]}"
                claims[syl] = char
        owner.update(claims)
        return None

    for word in core:
        if why := admit(word):
            raise ValueError(f"core word {word!r} cannot be kept: {why}")
    kept: dict[str, list[str]] = {name: [] for name in classes}
    dropped = []
    for i in range(max(map(len, classes.values()))):
        for name, cls in classes.items():
            if i < len(cls):
                if why := admit(cls[i]):
                    dropped.append(f"{cls[i]}: {why}")
                else:
                    kept[name].append(cls[i])
    for name, cls in kept.items():
        if len(cls) < 2:
            raise ValueError(f"word class {name} keeps {len(cls)} phrase(s) after homophone pruning")
    common = {name: kept[name] for name in shared}
    topics = {topic: {name: kept[f"{topic}.{name}"] for name in tcls} for topic, tcls in topic_classes.items()}
    return Lexicon(common, topics, {char: syl for syl, char in owner.items()}, dropped, domain)


DIGITS = "零一二三四五六七八九"


def number_words(n: int) -> list[str]:
    """Chinese reading of ``0 <= n < 10**8``, one character per word.

    Examples: 12 -> 十 二, 305 -> 三 百 零 五, 2000 -> 两 千, 20500 -> 两 万 零 五 百.
    """
    if not 0 <= n < 10**8:
        raise ValueError(f"number out of range: {n}")
    if n == 0:
        return ["零"]
    high, low = divmod(n, 10000)
    if not high:
        return _below_10k(low, leading=True)
    words = ["两"] if high == 2 else _below_10k(high, leading=True)
    words.append("万")
    if low:
        words += (["零"] if low < 1000 else []) + _below_10k(low, leading=False)
    return words


def _below_10k(n: int, leading: bool) -> list[str]:
    out, gap = [], False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit == 0:
            gap = bool(out)  # a zero after a non-zero digit is read once, as 零, before the next non-zero one
            continue
        if gap:
            out.append("零")
            gap = False
        if unit == "十" and digit == 1 and leading and not out:
            out.append("十")  # 十二, not 一十二
        elif digit == 2 and unit in ("千", "百") and not out:
            out += ["两", unit]
        else:
            out += [DIGITS[digit], unit] if unit else [DIGITS[digit]]
    return out


class NewsGenerator:
    """Samples word-segmented news sentences of :data:`MIN_CHARS` to :data:`MAX_CHARS` characters.

    Args:
        lexicon: the pruned word lists (:func:`build_lexicon`).
        seed: seed of this generator's random stream.
    """

    def __init__(self, lexicon: Lexicon, seed: int | np.random.SeedSequence):
        self.lexicon = lexicon
        self.rng = np.random.default_rng(seed)
        templates, topic_weights = DOMAINS[lexicon.domain]
        self._templates = [t.split() for _, t in templates]
        self._template_cdf = np.cumsum([w for w, _ in templates], dtype=np.float64)
        self._topics = list(topic_weights)
        self._topic_cdf = np.cumsum(list(topic_weights.values()), dtype=np.float64)

    def sentence(self) -> list[str]:
        """One sentence as a list of words, e.g. ``["今年", "北京", "的", "房价", ...]``."""
        while True:
            words = self._sample()
            if MIN_CHARS <= sum(map(len, words)) <= MAX_CHARS:
                return words

    def _sample(self) -> list[str]:
        topic = self._topics[self._draw(self._topic_cdf)]
        template = self._templates[self._draw(self._template_cdf)]
        words = []
        for slot in template:
            if slot.startswith("["):
                if self.rng.random() < 0.5:
                    continue
                slot = slot[1:-1]
            options = slot.split("|")
            words += self._fill(options[self.rng.integers(len(options))], topic)
        return words

    def _fill(self, slot: str, topic: str) -> list[str]:
        if slot == "PERCENT":
            if self.rng.random() < 0.7:
                return number_words(int(self.rng.integers(1, 100)))
            return number_words(int(self.rng.integers(0, 100))) + ["点"] + number_words(int(self.rng.integers(1, 10)))
        classes = self.lexicon.topics[topic] if slot in self.lexicon.topics[topic] else self.lexicon.common
        if slot not in classes:
            return [slot]  # a literal word
        phrase = self._pick(classes[slot]).split()
        if "_" in phrase:
            count = int(np.exp(self.rng.uniform(np.log(2), np.log(50000))))
            i = phrase.index("_")
            phrase[i:i + 1] = number_words(count)
        return phrase

    def _pick(self, phrases: list[str]) -> str:
        """Zipf-like choice: the k-th listed phrase has weight 1/k."""
        return phrases[self._draw(_zipf_cdf(len(phrases)))]

    def _draw(self, cdf: np.ndarray) -> int:
        """Index drawn with probabilities proportional to the steps of the cumulative weights ``cdf``."""
        return int(np.searchsorted(cdf, self.rng.random() * cdf[-1], side="right"))


def lexicon_words(lexicon: Lexicon) -> list[str]:
    """Every word the grammar can write (its phrases' words, the core words and the number characters), sorted."""
    phrases = [p for cls in lexicon.common.values() for p in cls]
    phrases += [p for topic in lexicon.topics.values() for cls in topic.values() for p in cls]
    return sorted({w for p in phrases for w in p.split() if w != "_"} | set(lx.CORE) | set(lx.NUMBER_CHARS))


def random_word_sentence(words: list[str], rng: np.random.Generator) -> list[str]:
    """Words drawn uniformly from ``words`` (no template, no n-gram structure), :data:`MIN_CHARS` to
    :data:`MAX_CHARS` characters."""
    while True:
        target = int(rng.integers(MIN_CHARS, MAX_CHARS + 1))
        sentence: list[str] = []
        while sum(map(len, sentence)) < target:
            sentence.append(words[int(rng.integers(len(words)))])
        if sum(map(len, sentence)) <= MAX_CHARS:
            return sentence


@functools.cache
def _zipf_cdf(n: int) -> np.ndarray:
    return np.cumsum(1 / np.arange(1, n + 1))
