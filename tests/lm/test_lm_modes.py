"""The LM decoding modes, on a recognizer with a stand-in backend (no network): compared with the modes without LM."""

import numpy as np
import pytest
import torch

from asr.features.cmvn import GlobalCMVN
from asr.features.fbank import Fbank
from asr.decoding.rescoring import attention_rescoring
from asr.inference.lm_modes import LM_MODES, fused_nbest, load_lm, tlg_nbest
from asr.inference.modes import MODES, Encoded
from asr.inference.recognizer import Recognizer
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

    def set_reverse_weight(self, weight):
        assert weight is None

    def decoder_scores(self, enc_out, enc_lens, hyps, hyps_lens):
        out = []
        for h, n in zip(hyps.tolist(), hyps_lens.tolist()):
            h = h[:n]
            out.append(-float(sum(a != b for a, b in zip(h, self.preferred)) + abs(len(h) - len(self.preferred))))
        return torch.tensor(out)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tok = CharTokenizer(wrap_units(sorted(CHARS)))
    out = tmp_path_factory.mktemp("lm_modes")
    arpa = write_arpa(estimate_arpa(random_sentences(CHARS, 200, seed=5), order=3), out / "char.arpa")
    rng = np.random.default_rng(0)
    lens = np.array([12, 9, 0])
    lp = np.stack([random_log_probs(rng, 12, len(tok), scale=2.0) for _ in lens])  # (B, T, V)
    enc_out = torch.zeros(len(lens), 12, 4)
    def recognizer(**lm_settings) -> Recognizer:
        lm, graph = load_lm(tok, **lm_settings)
        return Recognizer(FakeBackend(tok.encode("北京天气")), tok, Fbank(), GlobalCMVN(torch.zeros(80), torch.ones(80), 1),
                          beam=6, nbest=4, ctc_weight=0.5, modes={**MODES, **LM_MODES}, lm=lm, graph=graph)

    return recognizer, arpa, lambda: Encoded(enc_out, torch.from_numpy(lens), lp)


def test_a_mode_without_its_lm_names_the_setting(setup):
    recognizer, _, _ = setup
    rec = recognizer()
    with pytest.raises(ValueError, match=r"lm\.path"):
        rec.check_modes(["ctc_prefix_beam_search_lm"])
    with pytest.raises(ValueError, match=r"lm\.tlg_dir"):
        rec.check_modes(["tlg_attention_rescoring"])
    rec.check_modes(list(MODES))
    with pytest.raises(ValueError, match="unknown LM setting"):
        load_lm(rec.tokenizer, pth="x")


def test_weight_zero_modes_equal_the_modes_without_lm(setup):
    recognizer, arpa, encoded = setup
    rec = recognizer(path=str(arpa), weight=0.0, end_of_sentence=False, backend="python")
    enc = encoded()
    for lm_mode, mode in (("ctc_prefix_beam_search_lm", "ctc_prefix_beam_search"),
                          ("attention_rescoring_lm", "attention_rescoring")):
        assert LM_MODES[lm_mode].search(rec, enc) == MODES[mode].search(rec, enc)


def test_fused_nbest_is_the_search_with_the_scorer_plus_the_end_term(setup):
    from asr.decoding.ctc_prefix_beam import ctc_prefix_beam_search

    recognizer, arpa, encoded = setup
    rec = recognizer(path=str(arpa), weight=0.8, insertion_bonus=0.3, backend="python")
    lm = rec.lm
    enc = encoded()
    fused = fused_nbest(rec, enc)
    for b, n in enumerate(enc.lens.tolist()):
        plain = ctc_prefix_beam_search(enc.ctc_log_probs[b, :n], rec.beam, rec.nbest, scorer=lm.scorer)
        expected = sorted(((h, s + lm.scorer.end_score(lm.scorer.replay(h)[1])) for h, s in plain), key=lambda x: -x[1])
        assert [h for h, _ in fused[b]] == [h for h, _ in expected]
        np.testing.assert_allclose([s for _, s in fused[b]], [s for _, s in expected])


def test_tlg_modes_agree_with_the_graph_decoder(setup, tmp_path):
    pytest.importorskip("kaldi_decoder", reason="pip install kaldifst kaldilm kaldi-decoder")
    from asr.lm.tlg import build_tlg

    recognizer, arpa, encoded = setup
    tok = recognizer().tokenizer
    build_tlg(arpa, tok, tmp_path / "graph")
    rec = recognizer(tlg_dir=str(tmp_path / "graph"))
    enc = encoded()
    best = LM_MODES["tlg"].search(rec, enc)
    for b, n in enumerate(enc.lens.tolist()):
        assert best[b] == list(rec.graph.decoder.best(enc.ctc_log_probs[b, :n])[0])
    rescored = LM_MODES["tlg_attention_rescoring"].search(rec, enc)
    nbests = tlg_nbest(rec, enc)
    for b, nbest in enumerate(nbests):
        assert tuple(rescored[b]) in [h for h, _ in nbest]
    # the graph score's weight: ctc_weight / acoustic_scale by default, tlg_rescoring_weight when given
    for settings, weight in (({}, rec.ctc_weight / rec.graph.decoder.acoustic_scale), ({"tlg_rescoring_weight": 7.0}, 7.0)):
        rec = recognizer(tlg_dir=str(tmp_path / "graph"), tlg_acoustic_scale=2.0, **settings)
        enc = encoded()
        expected = attention_rescoring(tlg_nbest(rec, enc), enc.enc_out, enc.enc_lens, rec.backend.decoder_scores,
                                       ctc_weight=weight)
        assert LM_MODES["tlg_attention_rescoring"].search(rec, enc) == [list(h) for h, _ in expected]
