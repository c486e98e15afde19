"""KenLM and the Python ARPA model give the same scores (kenlm is a main dependency: never skipped)."""
import pytest

from asr.lm.arpa import write_arpa
from asr.lm.query import ArpaQuery, KenLMQuery, load_lm


def walk(query, words):
    state, out = query.begin(), []
    for w in words:
        logp, state = query.score(state, w)
        out.append(logp)
    return out


def test_python_backend_reads_arpa_and_refuses_a_binary(domain_b, tmp_path):
    query = load_lm(write_arpa(domain_b, tmp_path / "b.arpa"), backend="python")
    assert isinstance(query, ArpaQuery) and query.order == 5
    (tmp_path / "x.bin").write_bytes(b"mmap lm http://kheafield.com/code format version 5\0" + bytes(100))
    with pytest.raises(ValueError, match="not an ARPA file"):
        load_lm(tmp_path / "x.bin", backend="python")
    with pytest.raises(FileNotFoundError):
        load_lm(tmp_path / "none.arpa")


def test_python_states_score_like_the_full_history(domain_b):
    query = ArpaQuery(domain_b)
    words = list("efghijkefgzzhe") + ["</s>"]
    expected = [domain_b.log10_prob(["<s>", *words[:i]], w) for i, w in enumerate(words)]
    assert walk(query, words) == pytest.approx(expected, abs=1e-12)


def test_auto_backend_is_kenlm(domain_a, tmp_path):
    assert isinstance(load_lm(write_arpa(domain_a, tmp_path / "a.arpa")), KenLMQuery)


def test_kenlm_and_python_agree(domain_a, domain_b, tmp_path):
    for model in (domain_a, domain_b):
        path = write_arpa(model, tmp_path / "m.arpa")
        words = list("abcefgkhij") + ["</s>"]
        assert walk(KenLMQuery(path), words) == pytest.approx(walk(ArpaQuery(model), words), abs=1e-4)


def test_null_context_scores_are_the_unigram_probabilities(domain_a, tmp_path):
    path = write_arpa(domain_a, tmp_path / "a.arpa")
    words = [w for w in domain_a.vocab if w != "<s>"]
    for query in (KenLMQuery(path), ArpaQuery(domain_a)):
        null = query.null_context()
        assert [query.score(null, w)[0] for w in words] == pytest.approx([domain_a.prob[0][(w,)] for w in words],
                                                                         abs=1e-5)
