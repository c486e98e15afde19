"""Instantiate a config read from a file only through the project's own classes.

Hydra's ``_target_`` can name any callable (``os.system`` included), so a config that came with a
downloaded model file is checked first: every ``_target_`` must lie under an allowed prefix.
"""
from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

ALLOWED_PREFIXES = ("asr.",)


class UnsafeConfigError(ValueError):
    """A config names a ``_target_`` outside the allow-list."""


def check_targets(cfg: Any, allowed: tuple[str, ...] = ALLOWED_PREFIXES, where: str = "") -> None:
    """Raise :class:`UnsafeConfigError` if any ``_target_`` in ``cfg`` is outside ``allowed``."""
    if isinstance(cfg, (DictConfig, dict)):
        for key, value in cfg.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "_target_" and not (isinstance(value, str) and value.startswith(allowed)):
                raise UnsafeConfigError(f"refusing to instantiate {path}={value!r}: only targets under "
                                        f"{', '.join(allowed)} may come from a file")
            check_targets(value, allowed, path)
    elif isinstance(cfg, (ListConfig, list, tuple)):
        for i, value in enumerate(cfg):
            check_targets(value, allowed, f"{where}[{i}]")


def safe_instantiate(cfg: dict | DictConfig, **kwargs) -> Any:
    """``hydra.utils.instantiate`` after :func:`check_targets`."""
    cfg = OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg
    check_targets(cfg)
    return instantiate(cfg, **kwargs)
