"""The training fbank (:class:`asr.features.fbank.Fbank`) computed by kaldi-native-fbank, without torch.

What the exported-model runtime (``asr-transcribe --backend onnxruntime|om``) computes its features with: the
same Kaldi options (:meth:`Fbank.kaldi_options`, also stored in every exported file), the waveform scaled to the
16-bit range first. ``tests/features/test_kaldi_native.py`` compares it with the training fbank.
"""
from __future__ import annotations

import numpy as np

from asr.features.fbank import Fbank


def knf_options(options: dict):
    """A ``kaldi_native_fbank.FbankOptions`` holding :meth:`Fbank.kaldi_options`."""
    import kaldi_native_fbank as knf  # noqa: PLC0415 (imported by the runtime only)

    opts = knf.FbankOptions()
    frame = opts.frame_opts
    frame.samp_freq = float(options["sample_rate"])
    frame.frame_length_ms, frame.frame_shift_ms = options["frame_length_ms"], options["frame_shift_ms"]
    frame.dither, frame.preemph_coeff = options["dither"], options["preemphasis"]
    frame.window_type, frame.snip_edges = options["window_type"], options["snip_edges"]
    frame.remove_dc_offset, frame.round_to_power_of_two = options["remove_dc_offset"], options["round_to_power_of_two"]
    opts.mel_opts.num_bins = options["num_mel_bins"]
    opts.mel_opts.low_freq, opts.mel_opts.high_freq = options["low_freq"], options["high_freq"]
    opts.energy_floor, opts.use_energy, opts.raw_energy = options["energy_floor"], options["use_energy"], options["raw_energy"]
    opts.use_log_fbank, opts.use_power, opts.htk_compat = options["use_log_fbank"], options["use_power"], options["htk_compat"]
    return opts


class KaldiNativeFbank:
    """Callable like :class:`Fbank`, on NumPy arrays.

    Args:
        settings: the model's fbank settings.

    Attributes:
        settings: as given; its fields (``sample_rate``, ``frame_shift_ms``, ...) read as this object's.
    """

    def __init__(self, settings: Fbank):
        self.settings = settings
        self.options = settings.kaldi_options()
        self._opts = knf_options(self.options)

    def __getattr__(self, name: str):
        if name == "settings":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.settings, name)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` samples (snip_edges=True)."""
        return self.settings.num_frames(num_samples)

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """Args: wav: (1, N) or (N,) float in [-1, 1]. Returns: feats (T, num_mel_bins) float32."""
        import kaldi_native_fbank as knf  # noqa: PLC0415

        samples = np.asarray(wav, dtype=np.float32).reshape(-1) * np.float32(self.options["waveform_scale"])
        if self.num_frames(samples.size) == 0:
            return np.zeros((0, self.num_mel_bins), dtype=np.float32)
        fbank = knf.OnlineFbank(self._opts)
        fbank.accept_waveform(float(self.sample_rate), samples)
        fbank.input_finished()
        return np.array([fbank.get_frame(i) for i in range(fbank.num_frames_ready)], dtype=np.float32)
