import pytest
import torch

from asr.model.subsampling import SUBSAMPLING_LAYERS, Conv2dSubsampling, min_input_length, subsampled_length


@pytest.mark.parametrize("kind", sorted(SUBSAMPLING_LAYERS))
def test_lengths_equal_conv_output_sizes(kind):
    torch.manual_seed(0)
    sub = Conv2dSubsampling(input_dim=20, d_model=4, subsampling=kind)
    for t in range(min_input_length(kind), 70):
        out, lens = sub(torch.randn(1, t, 20), torch.tensor([t]))
        assert out.size(1) == subsampled_length(t, kind) == int(lens[0]), (kind, t)
    assert subsampled_length(min_input_length(kind), kind) == 1
    assert subsampled_length(min_input_length(kind) - 1, kind) == 0


@pytest.mark.parametrize("kind", sorted(SUBSAMPLING_LAYERS))
def test_padded_batch_equals_each_utterance_alone(kind):
    torch.manual_seed(0)
    sub = Conv2dSubsampling(input_dim=20, d_model=8, subsampling=kind).double()
    feats_lens = torch.tensor([50, 37, 16])
    feats = torch.randn(3, 50, 20, dtype=torch.float64)
    out, lens = sub(feats, feats_lens)
    for b, n in enumerate(feats_lens.tolist()):
        alone, alone_lens = sub(feats[b : b + 1, :n], feats_lens[b : b + 1])
        assert alone_lens[0] == lens[b] == alone.size(1)
        torch.testing.assert_close(out[b, : lens[b]], alone[0], rtol=0, atol=1e-12)


def test_bad_options_raise_clear_errors():
    with pytest.raises(ValueError, match="allowed"):
        Conv2dSubsampling(20, 8, "conv2d5")
    with pytest.raises(ValueError, match="too short"):
        Conv2dSubsampling(20, 8, "conv2d8")(torch.randn(1, 10, 20), torch.tensor([10]))
