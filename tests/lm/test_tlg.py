import json
import math

import numpy as np
import pytest

pytest.importorskip("kaldifst", reason="TLG needs kaldifst, kaldilm, kaldi-decoder (pip install)")
pytest.importorskip("kaldilm", reason="TLG needs kaldilm (pip install kaldilm)")
pytest.importorskip("kaldi_decoder", reason="TLG needs kaldi-decoder (pip install kaldi-decoder)")

from asr.lm.arpa import write_arpa  # noqa: E402
from asr.lm.estimate import estimate_arpa  # noqa: E402
from asr.lm.tlg import build_tlg, ctc_topology_text, lexicon_fst_text  # noqa: E402
from asr.lm.wfst_decoder import TLGDecoder  # noqa: E402
from asr.tokenizer.base import wrap_units  # noqa: E402
from asr.tokenizer.char import CharTokenizer  # noqa: E402
from tests.decoding.conftest import random_log_probs  # noqa: E402
from tests.lm.conftest import random_sentences  # noqa: E402

SENTENCES = [["北京", "天气", "很好"], ["上海", "天气", "不错"], ["北京市", "天气", "很好"],
             ["今天", "天气", "很好"], ["北京", "很好"], ["上海", "很好"], ["今天", "北京", "天气", "不错"]]
LN10 = math.log(10)


@pytest.fixture(scope="module")
def tokenizer():
    # 器 is a unit no LM word uses: the acoustics can prefer it, the graph cannot output it
    return CharTokenizer(wrap_units(sorted(set("".join(w for s in SENTENCES for w in s)) | {"器"})))


@pytest.fixture(scope="module")
def lm():
    return estimate_arpa(SENTENCES, order=3)


@pytest.fixture(scope="module", params=["full", "compact"])
def graph(request, lm, tokenizer, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"tlg_{request.param}")
    build_tlg(write_arpa(lm, out / "lm.arpa"), tokenizer, out / "graph", topology=request.param)
    return out / "graph"


def peaky_log_probs(tokenizer, text, confusions=None, frames_per_token=2, blanks=1):
    """(T, V) log-probs: blank, then each character for ``frames_per_token`` frames, ``blanks`` blank frames
    after each.

    ``confusions`` maps a character to (other, p_other): that character's frames give ``other``
    probability ``p_other`` and the character itself the rest (minus the small floor)."""
    V, rows = len(tokenizer), []

    def frame(probs):
        p = np.full(V, 1e-4)
        for t, v in probs.items():
            p[t] = v
        return np.log(p / p.sum())

    rows.append(frame({0: 1.0}))
    for c in text:
        probs = {tokenizer.unit_to_id[c]: 1.0}
        if confusions and c in confusions:
            other, p_other = confusions[c]
            probs = {tokenizer.unit_to_id[c]: 1.0 - p_other, tokenizer.unit_to_id[other]: p_other}
        rows.extend(frame(probs) for _ in range(frames_per_token))
        rows.extend(frame({0: 1.0}) for _ in range(blanks))
    return np.stack(rows).astype(np.float32)  # (T, V)


def test_decodes_the_expected_words(graph, tokenizer):
    dec = TLGDecoder(graph, tokenizer)
    hyp, _ = dec.best(peaky_log_probs(tokenizer, "上海天气不错"))
    assert tokenizer.decode(list(hyp)) == "上海天气不错"


def test_the_lm_corrects_what_the_acoustics_prefer(graph, tokenizer):
    lp = peaky_log_probs(tokenizer, "今天天气很好", confusions={"气": ("器", 0.7)})
    greedy = tokenizer.decode([int(t) for k, t in enumerate(lp.argmax(1)) if t and (k == 0 or t != lp[k - 1].argmax())])
    assert greedy == "今天天器很好"  # what CTC alone says
    hyp, _ = TLGDecoder(graph, tokenizer).best(lp)
    assert tokenizer.decode(list(hyp)) == "今天天气很好"


def test_best_path_score_is_acoustic_plus_lm(tokenizer, tmp_path):
    """With a unigram LM the graph has no back-off arcs (whose paths can undercut a listed n-gram's
    cost), so the best path's score is exactly the acoustic log-probability plus the LM's."""
    unigram = estimate_arpa(SENTENCES, order=1)
    build_tlg(write_arpa(unigram, tmp_path / "lm1.arpa"), tokenizer, tmp_path / "graph")
    lp = peaky_log_probs(tokenizer, "北京天气很好")
    hyp, score = TLGDecoder(tmp_path / "graph", tokenizer).best(lp)
    assert tokenizer.decode(list(hyp)) == "北京天气很好"
    acoustic = float(lp.max(axis=1).sum())  # the best path is the frame-wise argmax here
    lm_logp = LN10 * sum(unigram.log10_prob((), w) for w in ["北京", "天气", "很好", "</s>"])
    # graph weights are quantised to 1/1024 by minimisation (and printed to 6 digits once)
    assert score == pytest.approx(acoustic + lm_logp, abs=1e-2)


def test_nbest_is_distinct_sorted_and_starts_with_the_best_path(graph, tokenizer):
    dec = TLGDecoder(graph, tokenizer)
    lp = peaky_log_probs(tokenizer, "北京天气不错", confusions={"北": ("上", 0.4), "京": ("海", 0.4)})
    best, best_score = dec.best(lp)
    nbest = dec.nbest(lp, n=5)
    assert len(nbest) > 1
    hyps, scores = [h for h, _ in nbest], [s for _, s in nbest]
    assert len(set(hyps)) == len(hyps)
    assert scores == sorted(scores, reverse=True)
    assert hyps[0] == best
    assert scores[0] == pytest.approx(best_score, abs=1e-3)


def build(arpa_model, tokenizer, out, **kwargs):
    out.mkdir(parents=True, exist_ok=True)
    build_tlg(write_arpa(arpa_model, out / "lm.arpa"), tokenizer, out / "graph", **kwargs)
    return out / "graph"


def best_paths(graph, tokenizer, inputs):
    """Best (tokens, score) of each input, with a beam wide enough for an exact search on these small graphs."""
    dec = TLGDecoder(graph, tokenizer, beam=1000.0, max_active=1_000_000)
    return [dec.best(lp) for lp in inputs]


@pytest.mark.parametrize("topology", ["compact", "full"])
@pytest.mark.parametrize("lm_kind", ["word", "char"])
def test_backoff_epsilons_give_the_best_paths_of_the_earlier_construction(tmp_path, tokenizer, topology, lm_kind):
    """Keeping G's back-off arcs as epsilons (default) and removing them (the earlier construction) give
    the same best paths and scores on random CTC posteriors, for a word LM and a character LM."""
    if lm_kind == "word":
        tok, model = tokenizer, estimate_arpa(SENTENCES, order=3)
    else:
        chars = "北京天气很好上海今"
        tok, model = CharTokenizer(wrap_units(sorted(chars))), estimate_arpa(random_sentences(chars, 300, seed=7), 3)
    rng = np.random.default_rng(0)
    inputs = [random_log_probs(rng, int(rng.integers(5, 30)), len(tok), scale=2.5) for _ in range(20)]
    new = best_paths(build(model, tok, tmp_path / "new", topology=topology), tok, inputs)
    old = best_paths(build(model, tok, tmp_path / "old", topology=topology, backoff="rmepsilon"), tok, inputs)
    assert [h for h, _ in new] == [h for h, _ in old]
    np.testing.assert_allclose([s for _, s in new], [s for _, s in old], atol=1e-3)


def test_default_graph_decodes_the_test_sentences_as_the_earlier_default(tmp_path, tokenizer):
    """The default graph (compact, back-off epsilons) and the earlier default (full topology, epsilons
    removed) give the same best paths on peaky posteriors of the LM's sentences, with and without
    acoustic confusions the LM must correct."""
    model = estimate_arpa(SENTENCES, order=3)
    texts = ["".join(s) for s in SENTENCES] + ["今天天气很好", "北京市很好", "上海天气很好"]
    inputs = [peaky_log_probs(tokenizer, t) for t in texts]
    inputs += [peaky_log_probs(tokenizer, t, confusions={"气": ("器", 0.7), "海": ("京", 0.4)}) for t in texts]
    new = best_paths(build(model, tokenizer, tmp_path / "new"), tokenizer, inputs)
    old = best_paths(build(model, tokenizer, tmp_path / "old", topology="full", backoff="rmepsilon"), tokenizer,
                     inputs)
    assert [h for h, _ in new] == [h for h, _ in old]
    assert [tokenizer.decode(list(h)) for h, _ in new[: len(texts)]] == texts


def test_compact_topology_accepts_every_full_topology_path(tmp_path):
    """Every CTC path is a compact-topology path with the same cost, so on any input the compact graph's best
    score is at least the full one's (it may be higher: ``a a`` without a blank can read as two ``a``)."""
    chars = "北京天气很好上海今"
    tok = CharTokenizer(wrap_units(sorted(chars)))
    model = estimate_arpa(random_sentences(chars, 300, seed=8), 2)
    rng = np.random.default_rng(1)
    inputs = [random_log_probs(rng, int(rng.integers(5, 30)), len(tok), scale=2.5) for _ in range(20)]
    compact = best_paths(build(model, tok, tmp_path / "compact"), tok, inputs)
    full = best_paths(build(model, tok, tmp_path / "full", topology="full"), tok, inputs)
    assert all(c >= f - 1e-3 for (_, c), (_, f) in zip(compact, full))


def test_backoff_epsilons_keep_the_graph_small(tmp_path):
    """A character bigram over 150 units: removing the back-off epsilons copies the unigram state's arcs
    into every history (arcs ~ histories x units); keeping them, the graph has about as many arcs as the LM
    has n-grams."""
    chars = "".join(chr(0x4E00 + i) for i in range(150))
    tok = CharTokenizer(wrap_units(list(chars)))
    model = estimate_arpa(random_sentences(chars, 400, seed=9, max_len=12), 2)
    ngrams = sum(model.counts())
    meta = {}
    for backoff in ("epsilon", "rmepsilon"):
        graph = build(model, tok, tmp_path / backoff, backoff=backoff)
        meta[backoff] = json.loads((graph / "tlg.json").read_text())
    assert meta["epsilon"]["arcs"] < 4 * ngrams < meta["rmepsilon"]["arcs"]


def test_graph_of_other_units_is_refused(graph):
    other = CharTokenizer(wrap_units(list("北京天气很好")))
    with pytest.raises(ValueError, match="other units"):
        TLGDecoder(graph, other)


def test_lexicon_marks_prefix_spellings_with_a_disambiguation_symbol():
    words = {"<eps>": 0, "#0": 1, "北京": 2, "北京市": 3, "天": 4}
    text, count = lexicon_fst_text(words, {"北京": [5, 6], "北京市": [5, 6, 7], "天": [8]}, num_units=10)
    arcs = [line.split() for line in text.splitlines() if len(line.split()) == 4]
    assert ["0", "0", "10", "1"] in arcs  # #0 passes through
    assert any(a[2] == "11" for a in arcs)  # #1 ends the spelling of 北京 (a prefix of 北京市)
    assert ["0", "0", "8", "4"] in arcs  # a one-character word is a loop
    assert count == 2


def test_full_topology_accepts_exactly_ctc_paths():
    """The full topology's text, read as a transition table, maps paths to their CTC labelling."""
    V = 4
    arcs = {}
    for line in ctc_topology_text(V, topology="full").splitlines():
        f = line.split()
        if len(f) == 4:
            arcs[(int(f[0]), int(f[2]))] = (int(f[1]), int(f[3]))
    rng = np.random.default_rng(0)
    for _ in range(200):
        path = rng.integers(0, V, rng.integers(1, 8)).tolist()
        state, out = 0, []
        for label in path:
            state, olabel = arcs[(state, label + 1)]  # every path is accepted: input label = id + 1
            if olabel:
                out.append(olabel)
        expected = [c for k, c in enumerate(path) if c != 0 and (k == 0 or c != path[k - 1])]
        assert out == expected


def test_blank_skipping_keeps_the_best_paths_of_peaky_input(graph, tokenizer):
    """Leaving out near-certain blank frames changes neither the hypotheses of peaky posteriors (repeated
    characters included: 今天天气, whose blank is kept) nor their scores beyond the removed frames' blank
    log-probabilities; an all-blank input still decodes to nothing."""
    texts = ["".join(s) for s in SENTENCES]
    inputs = [peaky_log_probs(tokenizer, t, confusions={"气": ("器", 0.7)}, blanks=4) for t in texts]
    plain = TLGDecoder(graph, tokenizer)
    skipping = TLGDecoder(graph, tokenizer, blank_skip_threshold=0.99)
    for lp in inputs:
        kept = skipping.kept_frames(lp)
        assert len(kept) < len(lp)
        (hyp, score), (hyp_skip, score_skip) = plain.best(lp), skipping.best(lp)
        assert hyp_skip == hyp
        removed_blank = float(lp[:, 0].sum() - kept[:, 0].sum())
        assert score_skip + removed_blank == pytest.approx(score, abs=1e-2)
    # between two frames of 天 one blank frame stays (a repeat), between 天 and 气 none
    repeat, other = (skipping.kept_frames(peaky_log_probs(tokenizer, t, blanks=4)) for t in ("天天", "天气"))
    assert len(repeat) == len(other) + 1 and np.exp(repeat[2:3, 0]) > 0.99
    all_blank = np.repeat(peaky_log_probs(tokenizer, ""), 5, axis=0)
    assert len(skipping.kept_frames(all_blank)) == 1
    assert skipping.best(all_blank)[0] == () and np.isfinite(skipping.best(all_blank)[1])
    with pytest.raises(ValueError, match="blank_skip_threshold"):
        TLGDecoder(graph, tokenizer, blank_skip_threshold=1.5)
