"""SpecAugment on features: optional time warping, then frequency and time masks set to zero."""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class MaskPlan:
    """What one SpecAugment call does to a ``(T, F)`` feature matrix.

    Attributes:
        warp: ``(centre, new_centre)`` frames: frame ``centre`` is moved to ``new_centre``; None: no warp.
        freq_masks: ``(start, width)`` bin ranges set to 0.
        time_masks: ``(start, width)`` frame ranges set to 0 (after warping).
    """

    warp: tuple[int, int] | None
    freq_masks: list[tuple[int, int]]
    time_masks: list[tuple[int, int]]


class SpecAugment:
    """Time warp, frequency masks and time masks on (mean-normalised) features.

    Each mask width is drawn uniformly from ``[0, max width]`` and its start uniformly among the positions where
    it fits. Masked values are set to 0, the mean of normalised features.

    Args:
        num_freq_masks: number of frequency masks.
        freq_width: largest frequency mask, in bins.
        num_time_masks: number of time masks.
        time_width: largest time mask: a share of the utterance's frames if below 1 (0.05 = 5 %), else frames.
        time_warp: largest time-warp shift in frames; 0 turns warping off.
        prob: probability of augmenting an utterance.
        enabled: False switches SpecAugment off.
    """

    def __init__(self, num_freq_masks: int = 2, freq_width: int = 27, num_time_masks: int = 2,
                 time_width: float = 0.05, time_warp: int = 0, prob: float = 1.0, enabled: bool = True):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"SpecAugment: prob must be in [0, 1], got {prob}")
        if min(num_freq_masks, freq_width, num_time_masks, time_width, time_warp) < 0:
            raise ValueError("SpecAugment: mask counts, widths and time_warp must not be negative")
        self.num_freq_masks = int(num_freq_masks)
        self.freq_width = int(freq_width)
        self.num_time_masks = int(num_time_masks)
        self.time_width = float(time_width)
        self.time_warp = int(time_warp)
        self.prob = float(prob)
        self.enabled = bool(enabled)

    def max_time_width(self, num_frames: int) -> int:
        """Largest time mask for an utterance of ``num_frames`` frames."""
        width = self.time_width * num_frames if self.time_width < 1 else self.time_width
        return min(int(width), num_frames)

    def sample_masks(self, num_frames: int, num_bins: int, rng: random.Random) -> MaskPlan:
        """Draw the warp and masks for a ``(num_frames, num_bins)`` feature matrix."""
        warp = None
        if self.time_warp > 0 and num_frames > 2 * self.time_warp + 1:
            centre = rng.randrange(self.time_warp + 1, num_frames - self.time_warp)
            warp = (centre, centre + rng.randint(-self.time_warp, self.time_warp))
        freq_masks, time_masks = [], []
        for _ in range(self.num_freq_masks):
            width = rng.randint(0, min(self.freq_width, num_bins))
            freq_masks.append((rng.randint(0, num_bins - width), width))
        max_width = self.max_time_width(num_frames)
        for _ in range(self.num_time_masks):
            width = rng.randint(0, max_width)
            time_masks.append((rng.randint(0, num_frames - width), width))
        return MaskPlan(warp, freq_masks, time_masks)

    @staticmethod
    def apply(feats: torch.Tensor, plan: MaskPlan) -> torch.Tensor:
        """Carry out ``plan`` on ``feats: (T, F) float``; returns a new ``(T, F)`` tensor."""
        if plan.warp is not None:
            centre, new_centre = plan.warp
            x = feats.t().unsqueeze(0)  # (1, F, T)
            left = F.interpolate(x[..., :centre], size=new_centre, mode="linear", align_corners=False)
            right = F.interpolate(x[..., centre:], size=feats.shape[0] - new_centre, mode="linear",
                                  align_corners=False)
            feats = torch.cat([left, right], dim=-1).squeeze(0).t()  # (T, F)
        feats = feats.clone()
        for start, width in plan.freq_masks:
            feats[:, start:start + width] = 0.0
        for start, width in plan.time_masks:
            feats[start:start + width, :] = 0.0
        return feats

    def __call__(self, feats: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """Args: ``feats: (T, F) float``. Returns ``(T, F)``; ``feats`` itself when not applied."""
        if not self.enabled or self.prob <= 0.0 or rng.random() >= self.prob:
            return feats
        return self.apply(feats, self.sample_masks(feats.shape[0], feats.shape[1], rng))

    def __repr__(self) -> str:
        return f"SpecAugment({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"
