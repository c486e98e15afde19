"""The Recognizer's ``attention_length_bonus``: passed to joint attention beam search, and off by default.

A fake backend (a fixed encoder output, random CTC log-probabilities, a decoder looked up by prefix) keeps the test
free of a trained model; the reference is :func:`attention_beam_search` called directly.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from asr.decoding.attention_beam import attention_beam_search
from asr.features.cmvn import GlobalCMVN
from asr.features.fbank import Fbank
from asr.inference.recognizer import Recognizer
from asr.tokenizer.char import CharTokenizer

TOKENIZER = CharTokenizer.build(["甲乙丙"])
V = len(TOKENIZER)
T = 6  # encoder frames of every utterance


class TableBackend:
    """A backend whose encoder output is the features' first T frames, whose CTC log-probabilities are fixed per
    utterance (indexed by the value of its first feature) and whose decoder step looks the prefix up in a table."""

    device, min_input_frames, has_decoder_step = "cpu", 1, True

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.ctc = torch.log_softmax(torch.tensor(rng.normal(size=(3, T, V))), dim=-1)  # (U, T, V)
        self.table = {p: rng.dirichlet(np.full(V, 0.5)) for n in range(T + 1)
                      for p in itertools.product(range(V), repeat=min(n, 2))}

    def set_reverse_weight(self, weight):
        pass

    def encode(self, feats, feats_lens):
        return feats[:, :T], torch.clamp(feats_lens, max=T)  # (B, T, F), (B,)

    def ctc_log_probs(self, enc_out):
        return self.ctc[enc_out[:, 0, 0].long()]  # (B, T, V)

    def decoder_step(self, enc_out, enc_lens, ys_in):
        # the next token's distribution depends on the utterance and the last two tokens of the prefix
        rows = [np.roll(self.table[tuple(ys[1:].tolist()[-2:])], int(e[0, 0])) for e, ys in zip(enc_out, ys_in)]
        return torch.log(torch.tensor(np.array(rows)))  # (N, V)


def recognizer(**kwargs) -> Recognizer:
    fbank = Fbank()
    return Recognizer(TableBackend(seed=3), TOKENIZER, fbank, GlobalCMVN(np.zeros(fbank.num_mel_bins),
                                                                         np.ones(fbank.num_mel_bins), 1), **kwargs)


def feats() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(3, T, 4)
    x[:, :, 0] = torch.arange(3)[:, None]  # utterance index in the first feature
    return x, torch.full((3,), T)


def direct(rec: Recognizer, **kwargs) -> list[list[int]]:
    x, lens = feats()
    enc_out, enc_lens = rec.backend.encode(x, lens)
    ctc = rec.backend.ctc_log_probs(enc_out)
    tok = rec.tokenizer
    return [list(attention_beam_search(enc_out[b:b + 1], enc_lens[b:b + 1], ctc[b], rec.backend.decoder_step,
                                       sos=tok.sos_id, eos=tok.eos_id, beam=rec.beam,
                                       ctc_weight=rec.attention_ctc_weight, blank=tok.blank_id, **kwargs)[0][0])
            for b in range(3)]


def test_default_recognizer_is_the_search_without_a_length_term():
    rec = recognizer(beam=4)
    assert rec.attention_length_bonus == 0.0
    assert rec.decode_ids(*feats(), ["attention"])["attention"] == direct(rec)


@pytest.mark.parametrize("bonus", [-3.0, 1.5, 10.0])
def test_recognizer_passes_the_bonus_to_the_search(bonus):
    rec = recognizer(beam=4, attention_length_bonus=bonus)
    assert rec.decode_ids(*feats(), ["attention"])["attention"] == direct(rec, length_bonus=bonus)


def test_a_large_bonus_lengthens_and_a_large_penalty_shortens_the_hypotheses():
    lengths = {b: sum(map(len, recognizer(beam=4, attention_length_bonus=b).decode_ids(*feats(), ["attention"])
                          ["attention"])) for b in (-10.0, 0.0, 10.0)}
    assert lengths[-10.0] <= lengths[0.0] <= lengths[10.0] and lengths[-10.0] < lengths[10.0]
