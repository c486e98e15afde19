"""The LM decoding modes, on a stand-in recognizer (no network): compared with the modes without LM."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from asr.inference.recognizer import MODES, Encoded, check_modes
from asr.lm.arpa import write_arpa
from asr.lm.estimate import estimate_arpa
from asr.tokenizer.base import wrap_units
from asr.tokenizer.char import CharTokenizer
from tests.decoding.conftest import random_log_probs
from tests.lm.conftest import random_sentences

CHARS = "北京天气很好上海"


class FakeBackend:
    """decoder_scores: minus the number of tokens that differ from a fixed preferred sentence."""

    def __init__(self, preferred: list[int]):
        self.preferred = preferred

    def decoder_scores(self, enc_out, enc_lens, hyps, hyps_lens):
        out = []
        for h, n in zip(hyps.tolist(), hyps_lens.tolist()):
            h = h[:n]
            out.append(-float(sum(a != b for a, b in zip(h, self.preferred)) + abs(len(h) - len(self.preferred))))
        return torch.tensor(out)


@pytest.fixture(scope="module", autouse=True)
def lm_modes():
    """Import the LM modes (which registers them into MODES) and take them out again afterwards,
    so that tests elsewhere see the table without them (their import is a side effect)."""
    saved = dict(MODES)
    from asr.inference import lm_modes as module

    MODES.update(module.LM_MODES)
    yield module
    MODES.clear()
    MODES.update(saved)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tok = CharTokenizer(wrap_units(sorted(CHARS)))
    out = tmp_path_factory.mktemp("lm_modes")
    arpa = write_arpa(estimate_arpa(random_sentences(CHARS, 200, seed=5), order=3), out / "char.arpa")
    rng = np.random.default_rng(0)
    lens = np.array([12, 9, 0])
    lp = np.stack([random_log_probs(rng, 12, len(tok), scale=2.0) for _ in lens])  # (B, T, V)
    enc_out = torch.zeros(len(lens), 12, 4)
    rec = SimpleNamespace(tokenizer=tok, beam=6, nbest=4, blank_skip_threshold=None, ctc_weight=0.5,
                          backend=FakeBackend(tok.encode("北京天气")))
    return rec, arpa, lambda: Encoded(enc_out, torch.from_numpy(lens), lp)


def test_modes_are_registered(lm_modes):
    check_modes(["ctc_prefix_beam_search_lm", "attention_rescoring_lm", "tlg", "tlg_attention_rescoring"])


def test_a_mode_without_its_lm_names_the_setting(lm_modes, setup):
    rec, _, encoded = setup
    lm_modes.configure_lm(rec)
    with pytest.raises(ValueError, match="lm.path"):
        MODES["ctc_prefix_beam_search_lm"](rec, encoded())
    with pytest.raises(ValueError, match="lm.tlg_dir"):
        MODES["tlg"](rec, encoded())
    with pytest.raises(ValueError, match="unknown LM setting"):
        lm_modes.configure_lm(rec, pth="x")


def test_weight_zero_modes_equal_the_modes_without_lm(lm_modes, setup):
    rec, arpa, encoded = setup
    lm_modes.configure_lm(rec, path=str(arpa), weight=0.0, end_of_sentence=False, backend="python")
    enc = encoded()
    assert MODES["ctc_prefix_beam_search_lm"](rec, enc) == MODES["ctc_prefix_beam_search"](rec, enc)
    assert MODES["attention_rescoring_lm"](rec, enc) == MODES["attention_rescoring"](rec, enc)


def test_fused_nbest_is_the_search_with_the_scorer_plus_the_end_term(lm_modes, setup):
    from asr.decoding.ctc_prefix_beam import ctc_prefix_beam_search

    rec, arpa, encoded = setup
    lm = lm_modes.configure_lm(rec, path=str(arpa), weight=0.8, insertion_bonus=0.3, backend="python")
    enc = encoded()
    fused = lm_modes.fused_nbest(rec, enc)
    for b, n in enumerate(enc.lens.tolist()):
        plain = ctc_prefix_beam_search(enc.ctc_log_probs[b, :n], rec.beam, rec.nbest, scorer=lm.scorer)
        expected = sorted(((h, s + lm.scorer.end_score(lm.scorer.replay(h)[1])) for h, s in plain), key=lambda x: -x[1])
        assert [h for h, _ in fused[b]] == [h for h, _ in expected]
        np.testing.assert_allclose([s for _, s in fused[b]], [s for _, s in expected])


def test_tlg_modes_agree_with_the_graph_decoder(lm_modes, setup, tmp_path):
    pytest.importorskip("kaldi_decoder", reason="pip install kaldifst kaldilm kaldi-decoder")
    from asr.lm.tlg import build_tlg

    rec, arpa, encoded = setup
    build_tlg(arpa, rec.tokenizer, tmp_path / "graph")
    lm = lm_modes.configure_lm(rec, tlg_dir=str(tmp_path / "graph"))
    enc = encoded()
    best = MODES["tlg"](rec, enc)
    for b, n in enumerate(enc.lens.tolist()):
        assert best[b] == list(lm.tlg.best(enc.ctc_log_probs[b, :n])[0])
    rescored = MODES["tlg_attention_rescoring"](rec, enc)
    nbests = lm_modes.tlg_nbest(rec, enc)
    for b, nbest in enumerate(nbests):
        assert tuple(rescored[b]) in [h for h, _ in nbest]
