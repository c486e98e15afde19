"""Loading an augmentation config (``conf/augment/*.yaml``) outside a Hydra run, for the tools."""
from __future__ import annotations

import os

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from asr.augment.chain import AugmentChain


def load_augment_config(path: str | os.PathLike, noise_list: str | None = None,
                        rir_list: str | None = None) -> DictConfig:
    """Read an augment yaml and resolve its ``noise_list`` / ``rir_list`` references (top-level keys in a run).

    Returns:
        The ``augment`` node: ``{"waveform": [...], "specaug": {...} | None}``, interpolations resolved.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such augment config")
    root = OmegaConf.create({"augment": OmegaConf.load(path), "noise_list": noise_list, "rir_list": rir_list})
    OmegaConf.resolve(root)
    return root.augment


def build_augment(cfg: DictConfig) -> tuple[AugmentChain, object | None]:
    """Instantiate an ``augment`` node: ``(AugmentChain of the waveform list, SpecAugment or None)``."""
    return AugmentChain(instantiate(cfg.waveform or [])), instantiate(cfg.specaug) if cfg.specaug else None
