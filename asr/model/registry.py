"""The closed set of classes a model config read from a file may build, and the builder that reads it as data.

A model file (and an exported folder's metadata) stores the architecture as the training config wrote it::

    {"_target_": "asr.model.asr_model.ASRModel", "vocab_size": 4233, "ctc_weight": 0.3,
     "encoder": {"_target_": "asr.model.encoder.ConformerEncoder", "d_model": 256, ...}, ...}

The check itself is :mod:`asr.model.config_schema`'s (torch-free, also what exported folders are checked with);
:func:`build_model` builds it without Hydra and without importing anything by name: a ``_target_`` must be one
of the keys of :data:`REGISTRY` exactly (each key is its class's own ``module.qualname``, so nothing is
reached through attributes), keywords must be the class's documented ``__init__`` arguments, values are
strings, numbers, booleans, null or lists of them, and a sub-module (e.g. ``encoder``) goes only where the
class takes one. Hydra's special keys (``_args_``, ``_convert_``, ``_partial_``, ``_recursive_``, any other
``_key_``) are refused. Hydra stays for the configs a user writes; this is for configs that came with a file.

Sizes are not bounded: a crafted file can make the loader allocate a large model (and then fail on the
weights), never call anything outside these classes.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from torch import nn

from asr.losses.focal import FocalLoss
from asr.losses.label_smoothing import LabelSmoothingLoss
from asr.model.asr_model import ASRModel
from asr.model.ctc import CTCHead
from asr.model.decoder import TransformerDecoder
from asr.model.encoder import ConformerEncoder
from asr.model.config_schema import TARGET, check_model_config


@dataclass(frozen=True)
class Entry:
    """A buildable class: which of its keywords take a sub-module config (all others take plain values)."""

    cls: type[nn.Module]
    module_args: frozenset[str] = frozenset()

    def keywords(self) -> dict[str, inspect.Parameter]:
        """The ``__init__`` keywords (``self`` and ``*args``/``**kwargs`` excluded)."""
        params = inspect.signature(self.cls.__init__).parameters
        return {name: p for name, p in list(params.items())[1:]
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


REGISTRY: dict[str, Entry] = {qualified_name(e.cls): e for e in (
    Entry(ASRModel, frozenset({"encoder", "decoder", "ctc", "att_loss", "r2l_decoder"})),
    Entry(ConformerEncoder),
    Entry(TransformerDecoder),
    Entry(CTCHead),
    Entry(LabelSmoothingLoss),
    Entry(FocalLoss),
)}
ROOT_CLASSES = (ASRModel,)  # what a model file's top level must build


def _build(cfg: dict, where: str) -> nn.Module:
    entry = REGISTRY[cfg[TARGET]]
    kwargs = {}
    for key, value in cfg.items():
        if key == TARGET:
            continue
        if key in entry.module_args and value is not None:
            kwargs[key] = _build(value, f"{where}.{key}")
        else:
            kwargs[key] = list(value) if isinstance(value, list) else value
    try:
        return entry.cls(**kwargs)
    except (ValueError, TypeError) as e:  # the class's own argument checks
        raise ValueError(f"{where}: {entry.cls.__name__}: {e}") from None


def build_model(cfg: Any, where: str) -> nn.Module:
    """Build a model from a config read from a file, after :func:`check_model_config`.

    Args:
        cfg: the parsed JSON config.
        where: the file and key, for messages.

    Raises:
        ValueError: naming ``where`` and the offending key.
    """
    check_model_config(cfg, where)
    return _build(cfg, where)
