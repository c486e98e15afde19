"""Scheduled sampling (Bengio et al. 2015): feed the decoder its own predictions instead of gold tokens."""
from __future__ import annotations

import math

import torch


def _sigmoid(z: float) -> float:
    """Overflow-free logistic function."""
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _linear_ramp(step: float, ramp_steps: float, k: float) -> float:
    return step / ramp_steps


def _inverse_sigmoid_ramp(step: float, ramp_steps: float, k: float) -> float:
    # Bengio et al.: teacher-forcing probability eps(i) = k / (k + exp(i / k)) = sigmoid(ln k - i / k).
    def eps(i: float) -> float:
        return _sigmoid(math.log(k) - i / k)

    return (eps(0) - eps(step)) / (eps(0) - eps(ramp_steps))


RAMPS = {"linear": _linear_ramp, "inverse_sigmoid": _inverse_sigmoid_ramp}


class SamplingSchedule:
    """Probability of replacing a gold decoder input by the model's prediction, as a function of step.

    prob(step) = 0 before ``start_step``; over the next ``ramp_steps`` steps it rises to ``final_prob``
    and stays there. With i = step - start_step and R = ramp_steps:

    - "linear": final_prob * i / R.
    - "inverse_sigmoid": Bengio et al. (2015) decay the teacher-forcing probability as
      eps(i) = k / (k + exp(i / k)); the sampling probability 1 - eps(i) does not start at 0 and only
      tends to 1, so it is rescaled to run from 0 at i = 0 to final_prob at i = R:
      final_prob * (eps(0) - eps(i)) / (eps(0) - eps(R)). k (in steps, > 0) sets the steepness; the
      default R / 10 puts most of the rise in the first half of the ramp.

    Args:
        start_step: first step of the ramp.
        ramp_steps: length R of the ramp in steps (0 jumps to final_prob at start_step).
        final_prob: probability reached at the end of the ramp, in [0, 1].
        kind: "linear" or "inverse_sigmoid".
        k: inverse-sigmoid steepness in steps; None = ramp_steps / 10.
    """

    def __init__(
        self,
        start_step: int = 0,
        ramp_steps: int = 1000,
        final_prob: float = 0.0,
        kind: str = "linear",
        k: float | None = None,
    ):
        if kind not in RAMPS:
            raise ValueError(f"unknown sampling schedule kind {kind!r}; allowed: {sorted(RAMPS)}")
        if not 0.0 <= final_prob <= 1.0:
            raise ValueError(f"final_prob must be in [0, 1], got {final_prob}")
        if ramp_steps < 0:
            raise ValueError(f"ramp_steps must be >= 0, got {ramp_steps}")
        k = ramp_steps / 10 if k is None else k
        if kind == "inverse_sigmoid" and ramp_steps > 0 and k <= 0:
            raise ValueError(f"inverse_sigmoid needs k > 0, got {k}")
        self.start_step, self.ramp_steps, self.final_prob, self.k = start_step, ramp_steps, final_prob, k
        self.ramp = RAMPS[kind]

    def prob(self, step: int) -> float:
        """Sampling probability at training step ``step``."""
        i = step - self.start_step
        if i < 0:
            return 0.0
        if i >= self.ramp_steps:
            return self.final_prob
        return self.final_prob * self.ramp(i, self.ramp_steps, self.k)


def mix_decoder_input(
    ys_in: torch.Tensor,
    pred: torch.Tensor,
    prob: float,
    pad_mask: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Replace decoder input tokens by the model's own predictions with probability ``prob``.

    The decoder output at position i - 1 predicts input token i, so position i (1 <= i < L) may take
    pred[:, i-1]. Position 0 (<sos>) and padding positions are never replaced.

    Args:
        ys_in: (B, L) int64, teacher-forcing input (<sos> y_1 ...).
        pred: (B, L) int64, argmax of the decoder output for ys_in.
        prob: replacement probability in [0, 1].
        pad_mask: (B, L) bool, True = padding.
        generator: random generator on ys_in's device, or None for the global one.

    Returns:
        (B, L) int64.
    """
    shifted = torch.cat([ys_in[:, :1], pred[:, :-1]], dim=1)  # (B, L): shifted[:, i] = pred[:, i-1]
    draw = torch.rand(ys_in.shape, generator=generator, device=ys_in.device)  # (B, L)
    replace = (draw < prob) & ~pad_mask
    replace[:, 0] = False
    return torch.where(replace, shifted, ys_in)
