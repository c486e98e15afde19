"""An augmentation config (``conf/augment/*.yaml``): named entries, the waveform ones in order, then ``specaug``.

A config maps names to augmentations: every entry but :data:`FEATURE_KEY` is a waveform augmentation, applied in
the order of the mapping (an :class:`asr.augment.chain.AugmentChain`); :data:`FEATURE_KEY` is SpecAugment, applied
to the features. A null entry is switched off.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from asr.augment.chain import AugmentChain

FEATURE_KEY = "specaug"


def split_augment(augment: Mapping[str, Any] | None) -> tuple[AugmentChain, Any]:
    """Instantiated augmentations by name -> ``(chain of the waveform ones in order, SpecAugment or None)``."""
    augment = augment or {}
    waveform = [a for name, a in augment.items() if name != FEATURE_KEY and a is not None]
    return AugmentChain(waveform), augment.get(FEATURE_KEY)


def load_augment_config(path: str | os.PathLike, noise_list: str | None = None,
                        rir_list: str | None = None) -> DictConfig:
    """Read an augment yaml outside a Hydra run (for the tools), resolving its ``defaults`` (``full`` extends
    ``default``) and its ``noise_list`` / ``rir_list`` references (top-level keys in a run).

    Returns:
        The ``augment`` node, interpolations resolved.
    """
    root = OmegaConf.create({"augment": _load(path), "noise_list": noise_list, "rir_list": rir_list})
    OmegaConf.resolve(root)
    return root.augment


def _load(path: str | os.PathLike) -> DictConfig:
    """The file merged over the configs its ``defaults`` list names (same folder), unresolved."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such augment config")
    node = OmegaConf.load(path) or OmegaConf.create({})
    merged = OmegaConf.create({})
    for parent in node.pop("defaults", ["_self_"]):
        other = node if parent == "_self_" else _load(os.path.join(os.path.dirname(path), f"{parent}.yaml"))
        merged = OmegaConf.merge(merged, other)
    return merged


def build_augment(cfg: DictConfig) -> tuple[AugmentChain, Any]:
    """Instantiate an ``augment`` node: ``(AugmentChain of the waveform entries, SpecAugment or None)``."""
    return split_augment(instantiate(cfg))
