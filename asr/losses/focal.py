"""Focal loss (Lin et al. 2017) on top of label-smoothed cross-entropy, and a focal weight for CTC.

Per token, with p_y the predicted probability of the gold unit y and CE_eps the label-smoothed
cross-entropy of ``smoothed_cross_entropy``:

    loss = alpha_y * (1 - p_y)^gamma * CE_eps

The modulating factor measures how hard the token is by the gold probability alone, and scales the
token's whole smoothed loss. This keeps the smoothing proportions (1 - eps vs eps/(V-1)) of every
token intact, and gamma = 0, alpha = None gives exactly the label-smoothed loss. (Applying
(1 - p_v)^gamma inside the sum over units instead would reweight the smoothing terms by each unit's
own probability and change the smoothed target itself.) As in the paper, the factor is not
detached: gradients flow through it.
"""
from __future__ import annotations

import torch

from asr.losses.label_smoothing import LabelSmoothingLoss


def focal_ctc_loss(per_utt_loss: torch.Tensor, gamma: float) -> torch.Tensor:
    """Focal weighting of per-utterance CTC losses: (1 - exp(-loss))^gamma * loss.

    exp(-loss) is the CTC probability of the whole target, so well-recognised utterances are
    down-weighted. gamma = 0 returns the loss unchanged.

    Args:
        per_utt_loss: (B,) float, CTC negative log-likelihoods (finite).
        gamma: focusing parameter >= 0.

    Returns:
        (B,) float.
    """
    return (-torch.expm1(-per_utt_loss)).pow(gamma) * per_utt_loss  # 1 - exp(-l) = -expm1(-l)


class FocalLoss(LabelSmoothingLoss):
    """Label-smoothed cross-entropy with a focal modulating factor (formula in the module docstring).

    Args:
        vocab_size: output units V.
        gamma: focusing parameter >= 0 (0 = plain label-smoothed CE).
        smoothing: label smoothing eps in [0, 1).
        alpha: optional per-unit weights (length V) applied to the gold unit, or None.
        ignore_id: target value of padding tokens.
        normalize: "batch" or "token", as in ``LabelSmoothingLoss``.
    """

    def __init__(
        self,
        vocab_size: int,
        gamma: float = 2.0,
        smoothing: float = 0.1,
        alpha: list[float] | None = None,
        ignore_id: int = -1,
        normalize: str = "batch",
    ):
        super().__init__(vocab_size, smoothing, ignore_id, normalize)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if alpha is not None and len(alpha) != vocab_size:
            raise ValueError(f"alpha has {len(alpha)} weights, expected one per unit ({vocab_size})")
        self.gamma = gamma
        self.register_buffer("alpha", None if alpha is None else torch.tensor(list(alpha), dtype=torch.float))

    def token_losses(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Args: log_probs: (B, L, V); targets: (B, L) valid indices. Returns: (B, L) per-token loss."""
        smoothed_ce = super().token_losses(log_probs, targets)  # (B, L)
        p_gold = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).exp()  # (B, L)
        weight = (1.0 - p_gold).pow(self.gamma)
        if self.alpha is not None:
            weight = weight * self.alpha.to(log_probs.dtype)[targets]
        return weight * smoothed_ce
