import torch

from asr.model.mask import make_causal_mask, make_pad_mask


def test_pad_mask_matches_loop():
    lens = torch.tensor([3, 0, 5, 1])
    mask = make_pad_mask(lens, max_len=6)
    expected = torch.tensor([[t >= n for t in range(6)] for n in lens.tolist()])
    assert torch.equal(mask, expected)
    assert make_pad_mask(lens).shape == (4, 5)  # default T = max length


def test_causal_mask_matches_loop():
    expected = torch.tensor([[j > i for j in range(5)] for i in range(5)])
    assert torch.equal(make_causal_mask(5), expected)
