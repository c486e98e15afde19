import math

import torch

from asr.model.posenc import AbsolutePositionalEncoding, NoPositionalEncoding, RelPositionalEncoding


def plain_sinusoid(position: int, d_model: int) -> list[float]:
    """emb[2i] = sin(p / 10000^(2i/D)), emb[2i+1] = cos(p / 10000^(2i/D)), written out."""
    emb = []
    for i in range(d_model // 2):
        angle = position / 10000 ** (2 * i / d_model)
        emb += [math.sin(angle), math.cos(angle)]
    return emb


def test_absolute_adds_sinusoid_to_scaled_input():
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    out, pos_emb = AbsolutePositionalEncoding(8).eval()(x)
    pe = torch.tensor([plain_sinusoid(t, 8) for t in range(5)], dtype=torch.float64)
    assert pos_emb is None
    torch.testing.assert_close(out, x * math.sqrt(8) + pe)


def test_relative_embeds_positions_from_t_minus_1_down_to_minus_t_plus_1():
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    out, pos_emb = RelPositionalEncoding(8).eval()(x)
    expected = torch.tensor([plain_sinusoid(p, 8) for p in range(3, -4, -1)], dtype=torch.float64)
    torch.testing.assert_close(out, x * math.sqrt(8))
    torch.testing.assert_close(pos_emb, expected.unsqueeze(0))


def test_none_is_identity_in_eval():
    x = torch.randn(2, 4, 8)
    out, pos_emb = NoPositionalEncoding(8).eval()(x)
    assert pos_emb is None and torch.equal(out, x)
