"""Position-wise feed-forward network: Linear -> activation -> dropout -> Linear."""
from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "swish": nn.SiLU, "gelu": nn.GELU}


class FeedForward(nn.Module):
    """Two linear layers around an activation.

    Args:
        d_model: input/output dimension D.
        ffn_dim: hidden dimension.
        dropout: dropout rate after the activation.
        activation: "relu", "swish" or "gelu".
    """

    def __init__(self, d_model: int, ffn_dim: int, dropout: float = 0.0, activation: str = "swish"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; allowed: {sorted(ACTIVATIONS)}")
        self.net = nn.Sequential(
            nn.Linear(d_model, ffn_dim), ACTIVATIONS[activation](), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (..., D). Returns: (..., D)."""
        return self.net(x)
