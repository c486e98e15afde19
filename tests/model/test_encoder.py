import pytest
import torch

from asr.model.encoder import ConformerEncoder

TINY = dict(input_dim=16, d_model=8, num_heads=2, num_blocks=2, ffn_dim=16, kernel_size=5, dropout=0.1)
# (pos_enc, use_conv, macaron, subsampling, conv_norm)
VARIANTS = [
    ("rel", True, True, "conv2d4", "batch"),  # Conformer
    ("abs", True, True, "conv2d6", "layer"),
    ("none", True, False, "conv2d8", "batch"),
    ("abs", False, False, "conv2d4", "batch"),  # Transformer baseline
    ("rel", False, False, "conv2d4", "batch"),
    ("rope", True, True, "conv2d4", "batch"),  # Conformer with rotary positions
]


def build(pos_enc, use_conv, macaron, subsampling, conv_norm, **kwargs):
    torch.manual_seed(0)
    encoder = ConformerEncoder(
        **TINY, pos_enc=pos_enc, use_conv=use_conv, macaron=macaron, subsampling=subsampling, conv_norm=conv_norm,
        **kwargs,
    )
    return encoder.double().eval()


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_padded_batch_equals_each_utterance_alone(variant):
    encoder = build(*variant)
    feats_lens = torch.tensor([60, 43, 25])
    feats = torch.randn(3, 60, 16, dtype=torch.float64)
    enc_out, enc_lens = encoder(feats, feats_lens)
    assert enc_out.shape == (3, int(enc_lens.max()), 8)
    for b, n in enumerate(feats_lens.tolist()):
        alone, alone_lens = encoder(feats[b : b + 1, :n], feats_lens[b : b + 1])
        assert alone_lens[0] == enc_lens[b] == alone.size(1)
        torch.testing.assert_close(enc_out[b, : enc_lens[b]], alone[0], rtol=0, atol=1e-10)


@pytest.mark.parametrize("pos_enc", ["rel", "abs", "none", "rope"])
def test_sdpa_on_equals_off(pos_enc):
    encoder = build(pos_enc, True, True, "conv2d4", "batch")
    feats_lens = torch.tensor([40, 29])
    feats = torch.randn(2, 40, 16, dtype=torch.float64)
    with_sdpa, lens = encoder(feats, feats_lens)
    for module in encoder.modules():
        if hasattr(module, "use_sdpa"):
            module.use_sdpa = False
    without_sdpa, _ = encoder(feats, feats_lens)
    for b in range(2):
        torch.testing.assert_close(with_sdpa[b, : lens[b]], without_sdpa[b, : lens[b]], rtol=0, atol=1e-10)


def test_transformer_has_no_conv_or_macaron():
    encoder = build("abs", False, False, "conv2d4", "batch")
    assert all(block.conv is None and block.macaron_ff is None for block in encoder.blocks)
    conformer = build("rel", True, True, "conv2d4", "batch")
    assert all(block.conv is not None and block.macaron_ff is not None for block in conformer.blocks)


def test_bad_pos_enc_lists_allowed_values():
    with pytest.raises(ValueError, match=r"allowed: \['abs', 'none', 'rel', 'rope'\]"):
        ConformerEncoder(**TINY, pos_enc="alibi")


@pytest.mark.slow
def test_compiled_encoder_equals_eager_and_keeps_its_parameter_names():
    encoder = build("rel", True, True, "conv2d4", "batch").float()
    feats, feats_lens = torch.randn(3, 60, 16), torch.tensor([60, 43, 25])
    eager, eager_lens = encoder(feats, feats_lens)
    names = list(encoder.state_dict())
    encoder.compile()  # what `compile=true` does in asr.train
    compiled, compiled_lens = encoder(feats, feats_lens)
    assert list(encoder.state_dict()) == names and torch.equal(eager_lens, compiled_lens)
    for b, n in enumerate(eager_lens.tolist()):
        torch.testing.assert_close(compiled[b, :n], eager[b, :n], rtol=1e-4, atol=1e-5)
