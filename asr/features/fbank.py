"""80-dim log-mel filterbank, Kaldi-compatible (torchaudio's ``compliance.kaldi.fbank``).

Audio in [-1, 1] is scaled to the 16-bit range first, as Kaldi and AISHELL-1 recipes do, so the
log energies match Kaldi's and ``kaldi-native-fbank``'s.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from asr.utils.untrusted import check_fields

if TYPE_CHECKING:
    import torch

# What the features assume about the waveform: samples in [-1, 1] are multiplied by this before Kaldi's fbank.
WAVEFORM_SCALE = 32768.0


@dataclass
class Fbank:
    """Kaldi-style fbank.

    Args:
        num_mel_bins: mel bands (80 for AISHELL-1 recipes).
        frame_length_ms / frame_shift_ms: window and hop in milliseconds (25 / 10).
        dither: Gaussian dither amplitude (in 16-bit units); 0 makes features deterministic.
        preemphasis: pre-emphasis coefficient (Kaldi's 0.97; 0 turns it off).
        sample_rate: expected input rate.
    """

    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    dither: float = 0.0
    preemphasis: float = 0.97
    sample_rate: int = 16000

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        """Args: wav: (1, N) or (N,) float in [-1, 1]. Returns: feats (T, num_mel_bins) float32 (T = 0 when N is
        shorter than one window)."""
        import torch  # noqa: PLC0415 (the settings are read without torch by the exported-model runtime)
        import torchaudio.compliance.kaldi as kaldi  # noqa: PLC0415

        wav = wav.reshape(1, -1).float() * WAVEFORM_SCALE
        if self.num_frames(wav.shape[1]) == 0:
            return torch.zeros(0, self.num_mel_bins)
        return kaldi.fbank(
            wav, num_mel_bins=self.num_mel_bins, frame_length=self.frame_length_ms,
            frame_shift=self.frame_shift_ms, dither=self.dither, preemphasis_coefficient=self.preemphasis,
            energy_floor=0.0, sample_frequency=self.sample_rate, window_type="povey")

    def num_frames(self, num_samples: int) -> int:
        """Frames Kaldi produces for ``num_samples`` samples (snip_edges=True)."""
        win = int(self.sample_rate * self.frame_length_ms / 1000)
        hop = int(self.sample_rate * self.frame_shift_ms / 1000)
        return 0 if num_samples < win else 1 + (num_samples - win) // hop

    def to_dict(self) -> dict:
        return asdict(self)

    def kaldi_options(self) -> dict:
        """Every option of the computation, Kaldi's names and values, including the fixed ones (what an
        independent implementation such as kaldi-native-fbank must be given to compute the same features)."""
        return {"waveform_scale": WAVEFORM_SCALE, "sample_rate": self.sample_rate,
                "frame_length_ms": self.frame_length_ms, "frame_shift_ms": self.frame_shift_ms,
                "num_mel_bins": self.num_mel_bins, "dither": self.dither, "preemphasis": self.preemphasis,
                "window_type": "povey", "snip_edges": True, "remove_dc_offset": True, "round_to_power_of_two": True,
                "low_freq": 20.0, "high_freq": 0.0, "energy_floor": 0.0, "use_energy": False, "raw_energy": True,
                "use_log_fbank": True, "use_power": True, "htk_compat": False}

    @classmethod
    def from_dict(cls, d: dict, where: str = "features") -> "Fbank":
        """Inverse of :meth:`to_dict`, checking keys and types (the dict may come from a downloaded file).

        Raises:
            ValueError: starting with ``where``.
        """
        types = {f.name: (int,) if f.type == "int" else (float,) for f in fields(cls)}
        check_fields(d, types, where)
        fbank = cls(**d)
        if fbank.num_mel_bins < 1 or fbank.sample_rate < 1 or not 0 < fbank.frame_shift_ms <= fbank.frame_length_ms:
            raise ValueError(f"{where}: impossible fbank settings {d}")
        return fbank
