"""CTC output layer and loss, and the number of frames a target needs to be CTC-feasible."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from asr.model.mask import make_pad_mask


def ctc_min_frames(ys: torch.Tensor, ys_lens: torch.Tensor) -> torch.Tensor:
    """Fewest encoder frames that can emit each target under CTC.

    One frame per token plus one blank between each pair of equal consecutive tokens
    (``a a`` needs ``a <blank> a``).

    Args:
        ys: (B, L) int64, padded with anything after ys_lens.
        ys_lens: (B,) int64, U of each target.

    Returns:
        (B,) int64: U + number of i in [1, U) with ys[i] == ys[i-1].
    """
    repeats = ys[:, 1:] == ys[:, :-1]  # (B, L-1): position i+1 repeats position i
    repeats = repeats & ~make_pad_mask(ys_lens, ys.size(1))[:, 1:]  # count only inside the target
    return ys_lens + repeats.sum(dim=1)


class CTCHead(nn.Module):
    """Linear projection of the encoder output to V units, log-softmax, and CTC loss.

    Args:
        vocab_size: output units V.
        d_model: encoder dimension D.
        blank_id: index of the CTC blank.
    """

    def __init__(self, vocab_size: int, d_model: int, blank_id: int = 0):
        super().__init__()
        self.blank_id = blank_id
        self.proj = nn.Linear(d_model, vocab_size)

    def forward(self, enc_out: torch.Tensor) -> torch.Tensor:
        """Args: enc_out: (B, T', D) float. Returns: log_probs: (B, T', V) float, log-softmax over V."""
        return self.proj(enc_out).log_softmax(dim=-1)

    def loss(
        self, log_probs: torch.Tensor, enc_lens: torch.Tensor, ys: torch.Tensor, ys_lens: torch.Tensor
    ) -> torch.Tensor:
        """Per-utterance CTC loss (negative log-likelihood, not normalised by length).

        An infeasible utterance (enc_lens < ``ctc_min_frames``) gets +inf (zero_infinity=False);
        ``ASRModel`` detects and excludes those beforehand.

        Args:
            log_probs: (B, T', V) float.
            enc_lens: (B,) int64.
            ys: (B, L) int64, padded with anything (e.g. ignore_id) after ys_lens.
            ys_lens: (B,) int64.

        Returns:
            (B,) float.
        """
        ys = ys.masked_fill(make_pad_mask(ys_lens, ys.size(1)), self.blank_id)  # padding -> a valid index
        return F.ctc_loss(
            log_probs.transpose(0, 1),  # (T', B, V)
            ys,
            enc_lens,
            ys_lens,
            blank=self.blank_id,
            reduction="none",
            zero_infinity=False,
        )
