import pytest
import torch

from asr.model.convolution import ConvolutionModule
from asr.model.mask import make_pad_mask


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_padded_batch_equals_each_utterance_alone(norm):
    torch.manual_seed(0)
    conv = ConvolutionModule(6, kernel_size=5, norm=norm).double().eval()
    lens = torch.tensor([9, 6, 2])
    x = torch.randn(3, 9, 6, dtype=torch.float64)
    out = conv(x, make_pad_mask(lens))
    for b, n in enumerate(lens.tolist()):
        torch.testing.assert_close(out[b, :n], conv(x[b : b + 1, :n])[0], rtol=0, atol=1e-12)


def test_bad_options_raise_clear_errors():
    with pytest.raises(ValueError, match="odd"):
        ConvolutionModule(6, kernel_size=4)
    with pytest.raises(ValueError, match="allowed"):
        ConvolutionModule(6, norm="group")
