import random

import numpy as np
import pytest
import torch

from asr.augment.reverb import _FFT_ODD_FACTORS, Reverb, fft_length, reverberate
from tests.augment.conftest import make_sample, sine, write_wav


def _impulse(length: int, at: int = 0, height: float = 1.0) -> torch.Tensor:
    rir = torch.zeros(length)
    rir[at] = height
    return rir


def test_unit_impulse_rir_is_the_identity(tmp_path):
    clean = make_sample(sine(440.0, 0.5))
    path = write_wav(tmp_path / "impulse.wav", _impulse(800).unsqueeze(0))
    out = Reverb(1.0, rir_list=path)(clean, random.Random(0))
    assert torch.allclose(out["wav"], clean["wav"], atol=1e-6)


def test_delayed_scaled_impulse_is_also_the_identity():
    wav = sine(440.0, 0.5)
    assert torch.allclose(reverberate(wav, _impulse(500, at=37, height=-0.4)), wav, atol=1e-6)


def test_reverberate_matches_direct_convolution():
    g = torch.Generator().manual_seed(0)
    wav = 0.1 * torch.randn(2, 3000, generator=g)
    rir = torch.randn(700, generator=g) * torch.exp(-torch.arange(700) / 100.0)
    peak = int(rir.abs().argmax())
    scaled = (rir / rir[peak]).numpy().astype(np.float64)
    for c in range(2):
        expected = np.convolve(wav[c].numpy().astype(np.float64), scaled)[peak:peak + 3000]
        assert np.allclose(reverberate(wav, rir)[c].numpy(), expected, atol=1e-5)


def test_two_channel_rir_uses_the_configured_channel(tmp_path):
    echo = _impulse(400)
    echo[300] = 0.5
    path = write_wav(tmp_path / "stereo.wav", torch.stack([_impulse(400), echo]))
    clean = make_sample(sine(440.0, 0.25))
    x = clean["wav"]
    expected = x.clone()
    expected[:, 300:] += 0.5 * x[:, :-300]
    assert torch.allclose(Reverb(1.0, rir_list=path, channel=0)(clean, random.Random(0))["wav"], x, atol=1e-6)
    assert torch.allclose(Reverb(1.0, rir_list=path, channel=1)(clean, random.Random(0))["wav"], expected, atol=1e-6)
    with pytest.raises(ValueError, match="stereo.wav"):
        Reverb(1.0, rir_list=path, channel=2)(clean, random.Random(0))


def test_reverb_needs_rirs_when_on():
    with pytest.raises(ValueError, match="rir_list"):
        Reverb(0.3)
    with pytest.raises(ValueError, match="not both"):
        Reverb(0.3, rir_list="a.wav", simulate={"num_rooms": 2})


def test_simulated_rooms_keep_length_and_are_reproducible():
    pytest.importorskip("pyroomacoustics")
    simulate = {"num_rooms": 3, "max_order": 3, "seed": 7}
    clean = make_sample(sine(440.0, 0.5))
    first = Reverb(1.0, simulate=simulate)(clean, random.Random(1))
    again = Reverb(1.0, simulate=simulate)(clean, random.Random(1))
    assert first["wav"].shape == clean["wav"].shape
    assert torch.equal(first["wav"], again["wav"])
    assert not torch.allclose(first["wav"], clean["wav"], atol=1e-3)


def test_fft_length_is_the_smallest_fast_size_not_below_n():
    def fast(m):
        if m % 2:
            return False
        while m % 2 == 0:
            m //= 2
        return m in _FFT_ODD_FACTORS

    for n in [1, 2, 7, 31, 1000, 32799, 100003]:
        assert fft_length(n) == next(m for m in range(n, 2 * n + 3) if fast(m))
