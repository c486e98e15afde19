import random

import pytest
import torch
import torchaudio.functional as AF

from asr.augment.noise import AddNoise, noise_segment
from tests.augment.conftest import RATE, make_sample, sine, write_wav


def _snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    clean = clean.double()
    return float(10 * torch.log10(clean.pow(2).sum() / (noisy.double() - clean).pow(2).sum()))


@pytest.fixture
def noise_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    return write_wav(tmp_path / "noise.wav", 0.1 * torch.randn(1, 3 * RATE, generator=g))


@pytest.mark.parametrize("snr", [0.0, 7.5, 20.0])
def test_noise_is_added_at_the_drawn_snr(noise_file, snr):
    clean = make_sample(sine(440.0, 2.0, amp=0.2))
    out = AddNoise(1.0, noise_file, snr_db=[snr, snr])(clean, random.Random(3))
    assert abs(_snr_db(clean["wav"], out["wav"]) - snr) < 0.5


def test_noise_shorter_than_the_utterance_is_looped(tmp_path):
    period = RATE // 5
    g = torch.Generator().manual_seed(1)
    path = write_wav(tmp_path / "short.wav", 0.1 * torch.randn(1, period, generator=g))
    clean = make_sample(sine(440.0, 1.0, amp=0.1))
    added = AddNoise(1.0, [path], snr_db=[10, 10])(clean, random.Random(0))["wav"] - clean["wav"]  # (1, N)
    assert torch.allclose(added[:, period:], added[:, :-period], atol=1e-6)


def test_noise_segment_indexes_the_clip_cyclically():
    noise = torch.arange(7.0)
    for seed in range(5):
        seg = noise_segment(noise, 30, random.Random(seed))
        start = int(seg[0])
        assert torch.equal(seg, (torch.arange(30) + start) % 7 * 1.0)
    assert noise_segment(noise, 4, random.Random(0)).shape == (4,)


def test_missing_file_in_list_warns_naming_it_and_still_works(tmp_path, noise_file):
    listing = tmp_path / "noise.lst"
    listing.write_text(f"{noise_file}\nmissing_noise.wav\n")
    with pytest.warns(UserWarning, match="missing_noise.wav"):
        augment = AddNoise(1.0, str(listing), snr_db=[10, 10])
    assert len(augment.bank) == 1
    clean = make_sample(sine(440.0, 0.5))
    assert not torch.equal(augment(clean, random.Random(0))["wav"], clean["wav"])


def test_no_usable_noise_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no usable audio"), pytest.warns(UserWarning):
        AddNoise(1.0, [str(tmp_path / "gone.wav")])
    with pytest.raises(ValueError, match="noise_list"):
        AddNoise(0.5, None)
    assert AddNoise(0.0, None)(make_sample(sine(440.0, 0.1)), random.Random(0))


def test_noise_at_another_rate_is_resampled_once_and_cached(tmp_path):
    g = torch.Generator().manual_seed(2)
    slow = 0.1 * torch.randn(1, 8000, generator=g)
    path = write_wav(tmp_path / "noise8k.wav", slow, rate=8000)
    with pytest.warns(UserWarning, match="8000"):
        augment = AddNoise(1.0, path)
    clip = augment.bank.load(0)
    assert clip is augment.bank.load(0)
    assert torch.allclose(clip, AF.resample(slow, 8000, RATE), atol=1e-6)
    assert augment(make_sample(sine(440.0, 0.5)), random.Random(0))["wav"].shape == (1, RATE // 2)
