"""Learning-rate schedules: linear warm-up, then inverse-square-root (Noam) or cosine decay.

Both are ``LambdaLR``s stepped every optimizer step; Hydra builds them as partials
(``_partial_: true``) and the LightningModule hands them the optimizer.
"""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class _WarmupNoam:
    def __init__(self, warmup_steps: int):
        self.warmup_steps = max(1, warmup_steps)

    def __call__(self, step: int) -> float:
        step = step + 1
        return min(step / self.warmup_steps, (self.warmup_steps / step) ** 0.5)


class _WarmupCosine:
    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float):
        self.warmup_steps, self.total_steps, self.min_ratio = max(1, warmup_steps), total_steps, min_ratio

    def __call__(self, step: int) -> float:
        step = step + 1
        if step < self.warmup_steps:
            return step / self.warmup_steps
        done = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * done))


def warmup_noam(optimizer: Optimizer, warmup_steps: int = 25000) -> LambdaLR:
    """Peak lr (the optimizer's lr) at ``warmup_steps``, then lr * sqrt(warmup / step), as in WeNet's WarmupLR."""
    return LambdaLR(optimizer, _WarmupNoam(warmup_steps))


def warmup_cosine(optimizer: Optimizer, warmup_steps: int, total_steps: int, min_ratio: float = 0.01) -> LambdaLR:
    """Linear warm-up, then cosine decay to ``min_ratio`` * lr at ``total_steps``."""
    return LambdaLR(optimizer, _WarmupCosine(warmup_steps, total_steps, min_ratio))
