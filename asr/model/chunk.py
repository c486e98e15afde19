"""Chunk masks for streaming self-attention, and the chunk size of one training batch (U2-style dynamic chunks).

An utterance's encoder frames are cut into chunks of ``chunk_size`` frames (the last one may be shorter). A frame
sees every frame of its own chunk and of up to ``num_left_chunks`` chunks before it (all of them when negative),
never a later chunk: a chunk can be computed as soon as its audio has arrived, and chunk by chunk with the earlier
frames' keys and values cached (``ConformerEncoder.forward_chunk``) it gives the same output as the full forward
under this mask.

Dynamic chunk training (Yao et al. 2021, "WeNet: Production oriented streaming and non-streaming end-to-end
speech recognition toolkit", the U2 idea) draws one chunk size per batch, or full context with some probability,
so that one model decodes with any chunk size, or with none.
"""
from __future__ import annotations

import torch


def chunk_mask(size: int, chunk_size: int, num_left_chunks: int = -1,
               device: torch.device | None = None) -> torch.Tensor:
    """Which keys each query may not see under chunked attention.

    Args:
        size: encoder frames T'.
        chunk_size: frames per chunk (> 0).
        num_left_chunks: earlier chunks visible to a frame; negative = all of them.
        device: device of the mask.

    Returns:
        mask: (T', T') bool, True at (i, j) when frame i may not see frame j.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of encoder frames, got {chunk_size}")
    chunk = torch.arange(size, device=device) // chunk_size  # (T',) chunk index of each frame
    later = chunk.unsqueeze(0) > chunk.unsqueeze(1)  # (T', T') key j in a later chunk than query i
    if num_left_chunks < 0:
        return later
    too_early = chunk.unsqueeze(0) < chunk.unsqueeze(1) - num_left_chunks  # (T', T')
    return later | too_early


def draw_chunk_size(max_chunk_size: int, full_context_prob: float, generator: torch.Generator | None = None) -> int:
    """The chunk size of one training batch: 0 (full context) with probability ``full_context_prob``, else
    uniform in 1..``max_chunk_size``.

    Args:
        max_chunk_size: largest chunk in encoder frames (>= 1).
        full_context_prob: probability in [0, 1] of full context.
        generator: random source (None: torch's global one, seeded by the training seed).
    """
    if torch.rand((), generator=generator).item() < full_context_prob:
        return 0
    return int(torch.randint(1, max_chunk_size + 1, (), generator=generator))
