import numpy as np
import pytest
import soundfile as sf
import torch

from asr.features.fbank import Fbank

knf = pytest.importorskip("kaldi_native_fbank")


def kaldi_native(wav: np.ndarray, dither: float = 0.0, preemph: float = 0.97) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.dither = dither
    opts.frame_opts.preemph_coeff = preemph
    opts.frame_opts.window_type = "povey"
    opts.mel_opts.num_bins = 80
    opts.energy_floor = 0.0
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, (wav * 32768).tolist())
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


@pytest.mark.parametrize("preemph", [0.97, 0.0])
def test_matches_kaldi_native_fbank_on_synthetic_speech(synthetic_corpus, preemph):
    """Tolerance on the log-mel energies (natural log): max |diff| < 0.01 (1 % in energy, reached only in
    near-silent low bins where float32 FFT rounding dominates) and mean |diff| < 1e-4."""
    wavs = sorted(synthetic_corpus.glob("data_aishell/wav/train/*/*.wav"))[:3]
    for path in wavs:
        wav, sr = sf.read(path, dtype="float32")
        ours = Fbank(preemphasis=preemph)(torch.from_numpy(wav)).numpy()
        ref = kaldi_native(wav, preemph=preemph)
        assert ours.shape == ref.shape
        assert Fbank().num_frames(len(wav)) == ref.shape[0]
        diff = np.abs(ours - ref)
        assert diff.max() < 0.01 and diff.mean() < 1e-4, (path.name, diff.max(), diff.mean())


def test_dither_changes_features_only_slightly():
    g = torch.Generator().manual_seed(0)
    wav = torch.sin(torch.arange(16000) / 10.0) * 0.3 + 0.01 * torch.randn(16000, generator=g)
    a, b = Fbank()(wav), Fbank(dither=1.0)(wav)
    assert not torch.equal(a, b) and (a - b).abs().mean() < 0.05
