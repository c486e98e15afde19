import math

import pytest
import torch

from asr.model.attention import (MultiHeadAttention, RelPositionMultiHeadAttention, RoPEMultiHeadAttention, rel_shift,
                                 rotate)
from asr.model.mask import make_causal_mask, make_pad_mask
from asr.model.posenc import RelPositionalEncoding, rotary_tables

D, H = 8, 2


def reference_rel_attention(attn, x, lens):
    """Relative-position self-attention written plainly: loops over batch, head, query i and key j.

    score(i, j) = [(q_i + u) . k_j + (q_i + v) . p(i - j)] / sqrt(D/H), p(r) = linear_pos(sinusoid(r)),
    softmax over the valid keys j < lens[b].
    """
    b_size, t, _ = x.shape
    dk = D // H
    q, k, v = attn.linear_q(x), attn.linear_k(x), attn.linear_v(x)  # (B, T, D)
    out = torch.zeros_like(x)
    for b in range(b_size):
        for h in range(H):
            heads = slice(h * dk, (h + 1) * dk)
            u, w = attn.pos_bias_u[h], attn.pos_bias_v[h]
            for i in range(lens[b]):
                scores = []
                for j in range(lens[b]):
                    r = i - j
                    sinusoid = torch.tensor(
                        [f(r / 10000 ** (2 * m / D)) for m in range(D // 2) for f in (math.sin, math.cos)],
                        dtype=x.dtype,
                    )
                    p = attn.linear_pos(sinusoid)[heads]
                    qi = q[b, i, heads]
                    scores.append(((qi + u) @ k[b, j, heads] + (qi + w) @ p) / math.sqrt(dk))
                weights = torch.softmax(torch.stack(scores), dim=0)
                out[b, i, heads] = sum(weights[j] * v[b, j, heads] for j in range(lens[b]))
    return attn.linear_out(out)


@pytest.mark.parametrize("use_sdpa", [True, False])
def test_relative_attention_equals_plain_reference(use_sdpa):
    torch.manual_seed(0)
    attn = RelPositionMultiHeadAttention(D, H, use_sdpa=use_sdpa).double().eval()
    lens = torch.tensor([6, 4])
    x = torch.randn(2, 6, D, dtype=torch.float64)
    _, pos_emb = RelPositionalEncoding(D).eval()(x)
    out = attn(x, x, x, make_pad_mask(lens).unsqueeze(1), pos_emb)
    expected = reference_rel_attention(attn, x, lens.tolist())
    for b, n in enumerate(lens.tolist()):
        torch.testing.assert_close(out[b, :n], expected[b, :n], rtol=0, atol=1e-12)


def test_rel_shift_picks_relative_position_i_minus_j():
    t = 5
    x = torch.randn(2, 3, t, 2 * t - 1)
    index = torch.tensor([[t - 1 - i + j for j in range(t)] for i in range(t)])  # column of position i - j
    assert torch.equal(rel_shift(x), x.gather(-1, index.expand(2, 3, t, t)))


def run_both_paths(attn, *inputs):
    """Outputs and parameter gradients with SDPA on and off."""
    results = []
    for use_sdpa in (True, False):
        attn.use_sdpa = use_sdpa
        attn.zero_grad()
        out = attn(*inputs)
        out.square().sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in attn.named_parameters()}))
    return results


@pytest.mark.parametrize("kind", ["plain_self", "causal", "is_causal", "cross", "relative", "rope"])
def test_sdpa_on_equals_off(kind):
    torch.manual_seed(0)
    lens = torch.tensor([7, 5, 2])
    x = torch.randn(3, 7, D, dtype=torch.float64)
    pad = make_pad_mask(lens).unsqueeze(1)  # (B, 1, T)
    if kind == "relative":
        attn = RelPositionMultiHeadAttention(D, H)
        inputs = (x, x, x, pad, RelPositionalEncoding(D).eval()(x)[1])
    elif kind == "causal":
        attn = MultiHeadAttention(D, H)
        inputs = (x, x, x, pad | make_causal_mask(7))
    elif kind == "is_causal":  # the decoder's self-attention: no mask, SDPA's is_causal
        attn = MultiHeadAttention(D, H)
        inputs = (x, x, x, None, None, True)
    elif kind == "rope":
        attn = RoPEMultiHeadAttention(D, H)
        inputs = (x, x, x, pad, torch.arange(7, dtype=torch.float32))
    elif kind == "cross":
        attn = MultiHeadAttention(D, H)
        inputs = (torch.randn(3, 4, D, dtype=torch.float64), x, x, pad)
    else:
        attn = MultiHeadAttention(D, H)
        inputs = (x, x, x, pad)
    (out_sdpa, grads_sdpa), (out_ref, grads_ref) = run_both_paths(attn.double().eval(), *inputs)
    valid = ~make_pad_mask(lens)
    if kind != "cross":
        torch.testing.assert_close(out_sdpa[valid], out_ref[valid], rtol=0, atol=1e-12)
    else:
        torch.testing.assert_close(out_sdpa, out_ref, rtol=0, atol=1e-12)
    for name in grads_ref:
        torch.testing.assert_close(grads_sdpa[name], grads_ref[name], rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize("use_sdpa", [True, False])
@pytest.mark.parametrize("relative", [True, False])
def test_fully_masked_rows_give_zeros_not_nan(use_sdpa, relative):
    torch.manual_seed(0)
    cls = RelPositionMultiHeadAttention if relative else MultiHeadAttention
    attn = cls(D, H, use_sdpa=use_sdpa)
    x = torch.randn(2, 4, D, requires_grad=True)
    pos_emb = RelPositionalEncoding(D)(x)[1] if relative else None
    mask = make_pad_mask(torch.tensor([4, 0])).unsqueeze(1)  # second utterance is empty
    out = attn(x, x, x, mask, pos_emb)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    torch.testing.assert_close(out[1], attn.linear_out.bias.expand(4, D))  # zero context, then linear_out


def test_bad_head_count_raises():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)


def test_is_causal_equals_an_explicit_causal_mask():
    torch.manual_seed(0)
    attn = MultiHeadAttention(D, H).double().eval()
    x = torch.randn(2, 6, D, dtype=torch.float64)
    torch.testing.assert_close(attn(x, x, x, causal=True), attn(x, x, x, make_causal_mask(6).unsqueeze(0)),
                               rtol=0, atol=1e-12)


def test_rope_scores_depend_on_relative_position_only_and_rotate_like_complex_numbers():
    torch.manual_seed(0)
    attn = RoPEMultiHeadAttention(D, H).double().eval()
    x = torch.randn(2, 6, D, dtype=torch.float64)
    positions = torch.arange(6, dtype=torch.float32)
    torch.testing.assert_close(attn(x, x, x, None, positions), attn(x, x, x, None, positions + 37.0),
                               rtol=1e-5, atol=1e-6)  # float32 angles of larger positions round a little more
    # rotation = multiplication by e^{i p theta} of (first half + i * second half)
    v = torch.randn(1, 1, 6, D // H, dtype=torch.float64)
    cos, sin = rotary_tables(positions, D // H)
    half = D // H // 2
    z = torch.complex(v[..., :half], v[..., half:]) * torch.polar(torch.ones(6, half, dtype=torch.float64),
                                                                  (torch.atan2(sin, cos)[:, :half]).double())
    torch.testing.assert_close(rotate(v, cos, sin), torch.cat([z.real, z.imag], dim=-1), rtol=1e-6, atol=1e-6)
