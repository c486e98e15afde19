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


def test_tables_under_bf16_autocast_are_the_fp32_tables_cast_and_the_encoder_stays_close():
    from asr.model.encoder import ConformerEncoder

    torch.manual_seed(0)  # the absolute check rounds table = out - x*12 back to bf16: a rare input lands on a tie
    x = torch.randn(2, 350, 144)
    for module in (RelPositionalEncoding(144), AbsolutePositionalEncoding(144)):
        module.eval()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, pos_bf16 = module(x.bfloat16())
            out_bf16, _ = module(x.bfloat16())
        _, pos_fp32 = module(x)
        out_fp32, _ = module(x)
        if pos_fp32 is not None:  # relative: positions +-349, where bf16 positions would collapse
            assert pos_bf16.dtype == torch.bfloat16 and torch.equal(pos_bf16, pos_fp32.bfloat16())
        else:  # absolute: the table is added in the activations' dtype, after the fp32 computation
            table = out_fp32 - x * math.sqrt(144)
            torch.testing.assert_close(out_bf16.float(), (x.bfloat16() * math.sqrt(144) + table.bfloat16()).float())
    torch.manual_seed(0)
    encoder = ConformerEncoder(input_dim=80, d_model=144, num_heads=4, num_blocks=2, ffn_dim=576, dropout=0.0).eval()
    feats, lens = torch.randn(2, 1400, 80), torch.tensor([1400, 1000])
    with torch.no_grad():
        ref, _ = encoder(feats, lens)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = encoder(feats, lens)
    valid = ref[0]  # the full-length row
    err = (low[0].float() - valid).abs().max() / valid.abs().max()
    assert err < 0.05, err  # bf16 keeps 8 bits: about 1% per op, a few % after two blocks
