import numpy as np
import pytest
import torch

from asr.decoding.rescoring import attention_rescoring


class TableScoreFn:
    """Fake decoder: a fixed score per hypothesis, plus enc_out[n, 0, 0] so that rows must match utterances."""

    def __init__(self, table: dict[tuple[int, ...], float], default: float = 0.0):
        self.table, self.default = table, default
        self.calls = 0

    def __call__(self, enc_out, enc_lens, hyps, hyps_lens):
        assert enc_out.shape[0] == enc_lens.shape[0] == hyps.shape[0] == hyps_lens.shape[0]
        self.calls += 1
        scores = [self.table.get(tuple(h[:n].tolist()), self.default) for h, n in zip(hyps, hyps_lens)]
        return torch.tensor(scores) + enc_out[:, 0, 0]  # (N,)


def make_batch():
    nbest = [
        [((1, 2), -1.0), ((1,), -1.5), ((), -4.0)],
        [((3,), -0.5), ((3, 3), -0.7)],
        [((), -0.1)],
    ]
    enc_out = torch.arange(3.0)[:, None, None].expand(3, 5, 4).contiguous()  # (B, T, D), row b filled with b
    return nbest, enc_out, torch.tensor([5, 4, 2])


def test_picks_decoder_best_without_ctc_and_ctc_best_with_uniform_decoder():
    nbest, enc_out, enc_lens = make_batch()
    decoder = TableScoreFn({(1,): -0.2, (1, 2): -3.0, (): -5.0, (3, 3): -0.1, (3,): -2.0})
    by_decoder = attention_rescoring(nbest, enc_out, enc_lens, decoder, ctc_weight=0.0)
    assert [hyp for hyp, _ in by_decoder] == [(1,), (3, 3), ()]
    by_ctc = attention_rescoring(nbest, enc_out, enc_lens, TableScoreFn({}), ctc_weight=0.5)
    assert [hyp for hyp, _ in by_ctc] == [(1, 2), (3,), ()]

@pytest.mark.parametrize("reverse_weight", [0.0, 0.3])
def test_one_batched_call_equals_one_by_one_and_the_formula(reverse_weight):
    nbest, enc_out, enc_lens = make_batch()
    rng = np.random.default_rng(0)
    l2r = TableScoreFn({h: float(rng.normal()) for u in nbest for h, _ in u})
    r2l = TableScoreFn({h: float(rng.normal()) for u in nbest for h, _ in u})
    kwargs = dict(ctc_weight=0.4, r2l_score_fn=r2l, reverse_weight=reverse_weight)
    batched = attention_rescoring(nbest, enc_out, enc_lens, l2r, **kwargs)
    assert l2r.calls == 1
    for b, utt in enumerate(nbest):
        one = attention_rescoring([utt], enc_out[b : b + 1], enc_lens[b : b + 1], l2r, **kwargs)
        assert one[0][0] == batched[b][0] and np.isclose(one[0][1], batched[b][1])
        formula = {
            h: (1 - reverse_weight) * (l2r.table[h] + b) + reverse_weight * (r2l.table[h] + b) + 0.4 * ctc
            for h, ctc in utt
        }
        best = max(formula, key=formula.get)
        assert batched[b][0] == best and np.isclose(batched[b][1], formula[best])


def test_utterance_without_hypotheses_is_an_error():
    nbest, enc_out, enc_lens = make_batch()
    with pytest.raises(ValueError, match="utterance 1"):
        attention_rescoring([nbest[0], [], nbest[2]], enc_out, enc_lens, TableScoreFn({}))
