import pytest
import torch

from asr.model.decoder import TransformerDecoder, add_sos_eos, reverse_padded

V, D, SOS, EOS, IGNORE = 11, 8, 10, 10, -1


def build():
    torch.manual_seed(0)
    return TransformerDecoder(V, d_model=D, num_heads=2, num_blocks=2, ffn_dim=16).double().eval()


def encoder_batch():
    enc_lens = torch.tensor([9, 6, 3])
    return torch.randn(3, 9, D, dtype=torch.float64), enc_lens


def test_add_sos_eos_matches_loop():
    ys = torch.tensor([[1, 2, 3], [4, IGNORE, IGNORE], [IGNORE, IGNORE, IGNORE]])
    ys_lens = torch.tensor([3, 1, 0])
    ys_in, ys_out = add_sos_eos(ys, ys_lens, SOS, EOS, IGNORE)
    for b, n in enumerate(ys_lens.tolist()):
        tokens = ys[b, :n].tolist()
        assert ys_in[b].tolist() == [SOS] + tokens + [EOS] * (3 - n)
        assert ys_out[b].tolist() == tokens + [EOS] + [IGNORE] * (3 - n)


def test_reverse_padded_matches_loop():
    ys = torch.tensor([[1, 2, 3, 4], [5, 6, -1, -1], [7, -1, -1, -1]])
    ys_lens = torch.tensor([4, 2, 1])
    expected = [ys[b, :n].flip(0).tolist() + ys[b, n:].tolist() for b, n in enumerate(ys_lens.tolist())]
    assert reverse_padded(ys, ys_lens).tolist() == expected


def test_padded_batch_equals_each_utterance_alone():
    decoder = build()
    enc_out, enc_lens = encoder_batch()
    ys_in = torch.randint(0, V, (3, 5))
    ys_in_lens = torch.tensor([5, 2, 4])
    logits = decoder(enc_out, enc_lens, ys_in, ys_in_lens)
    assert logits.shape == (3, 5, V)
    for b in range(3):
        n, t = int(ys_in_lens[b]), int(enc_lens[b])
        alone = decoder(enc_out[b : b + 1, :t], enc_lens[b : b + 1], ys_in[b : b + 1, :n], ys_in_lens[b : b + 1])
        torch.testing.assert_close(logits[b, :n], alone[0], rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "hyps, hyps_lens",
    [
        (torch.tensor([[1, 2, 3, 4], [5, 5, 777, -1], [9, 0, 0, 0]]), torch.tensor([4, 2, 0])),  # arbitrary padding
        (torch.zeros(3, 0, dtype=torch.long), torch.zeros(3, dtype=torch.long)),  # only empty hypotheses
    ],
)
def test_score_equals_one_by_one_loop(hyps, hyps_lens):
    decoder = build()
    enc_out, enc_lens = encoder_batch()
    scores = decoder.score(enc_out, enc_lens, hyps, hyps_lens, SOS, EOS)
    for n in range(3):
        u, t = int(hyps_lens[n]), int(enc_lens[n])
        tokens = hyps[n, :u].tolist()
        ys_in = torch.tensor([[SOS] + tokens])
        log_probs = decoder(enc_out[n : n + 1, :t], enc_lens[n : n + 1], ys_in, torch.tensor([u + 1]))
        log_probs = log_probs.log_softmax(dim=-1)[0]
        expected = sum(log_probs[i, z] for i, z in enumerate(tokens + [EOS]))
        torch.testing.assert_close(scores[n], expected, rtol=0, atol=1e-10)
