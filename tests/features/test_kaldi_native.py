"""kaldi-native-fbank with the options the exported metadata records gives the training fbank's features."""
import numpy as np
import pytest
import soundfile as sf
import torch

from asr.features.fbank import Fbank
from asr.features.kaldi_native import KaldiNativeFbank


@pytest.mark.parametrize("settings", [Fbank(), Fbank(preemphasis=0.0, num_mel_bins=40)])
def test_equals_the_training_fbank(synthetic_corpus, settings):
    """Same tolerance as tests/features/test_fbank.py (float32 FFT rounding in near-silent bins)."""
    ours = KaldiNativeFbank(settings)
    for path in sorted(synthetic_corpus.glob("data_aishell/wav/train/*/*.wav"))[:3]:
        wav, _ = sf.read(path, dtype="float32")
        ref = settings(torch.from_numpy(wav)).numpy()
        got = ours(wav)
        assert got.shape == ref.shape and got.dtype == np.float32
        diff = np.abs(got - ref)
        assert diff.max() < 0.01 and diff.mean() < 1e-4, (path.name, diff.max(), diff.mean())


def test_too_short_gives_no_frame():
    settings = Fbank()
    for n in (0, 399, 400):
        assert KaldiNativeFbank(settings)(np.zeros(n, dtype=np.float32)).shape == (settings.num_frames(n), 80)
