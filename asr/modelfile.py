"""The model file: one safetensors file holding weights, model config, tokenizer, features and CMVN.

Decoding and export need only this file. Loading it is reading data: safetensors holds tensors and string
metadata only (nothing is unpickled), the metadata is strict JSON, and the model config builds only the
project's registered model classes (:mod:`asr.model.registry`); the tokenizer, features, CMVN and the optional
training-length statistics are checked key by key. Every problem is a ``ValueError`` naming the file and the key.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
from safetensors.torch import load_file, safe_open, save_file

from asr.data.lengths import TrainingLengths
from asr.features.cmvn import GlobalCMVN
from asr.features.fbank import Fbank
from asr.model.asr_model import ASRModel
from asr.model.registry import build_model
from asr.tokenizer import Tokenizer, tokenizer_from_dict
from asr.utils.io import atomic_path
from asr.utils.untrusted import parse_json

FORMAT_VERSION = 1
META_KEYS = ("model_config", "tokenizer", "features", "cmvn")
# Keys a model file may lack (files written before they existed): training_lengths (asr.data.lengths).
OPTIONAL_META_KEYS = ("training_lengths",)


@dataclass
class LoadedModel:
    model: ASRModel
    tokenizer: Tokenizer
    fbank: Fbank
    cmvn: GlobalCMVN
    meta: dict
    training_lengths: TrainingLengths | None = None


def make_meta(model_config: dict, tokenizer: Tokenizer, fbank: Fbank, cmvn: GlobalCMVN,
              training_lengths: TrainingLengths | None = None) -> dict:
    """Everything besides the weights that decoding needs, as JSON-serialisable values."""
    meta = {"model_config": model_config, "tokenizer": tokenizer.to_dict(), "features": fbank.to_dict(),
            "cmvn": cmvn.to_dict()}
    if training_lengths is not None:
        meta["training_lengths"] = training_lengths.to_dict()
    return meta


def save_model_file(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], meta: dict) -> None:
    """Write weights and ``meta`` (see :func:`make_meta`) to ``path`` atomically."""
    keys = META_KEYS + tuple(k for k in OPTIONAL_META_KEYS if meta.get(k) is not None)
    metadata = {"format_version": str(FORMAT_VERSION), **{k: json.dumps(meta[k], ensure_ascii=False) for k in keys}}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


def read_meta(path: str | os.PathLike) -> dict:
    """The metadata of a model file, parsed as strict JSON (nothing checked beyond that; see :func:`load_model_file`)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types; name the file whatever it was
        raise ValueError(f"{path}: not a model file ({e})") from None
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ValueError(f"{path}: model file format version {version!r}, this code reads version {FORMAT_VERSION}")
    missing = [k for k in META_KEYS if k not in metadata]
    if missing:
        raise ValueError(f"{path}: model file lacks {missing}")
    keys = META_KEYS + tuple(k for k in OPTIONAL_META_KEYS if k in metadata)
    return {k: parse_json(metadata[k], f"{path}: metadata key {k!r}") for k in keys}


def load_model_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model (eval mode) with its tokenizer, feature extractor and CMVN."""
    meta = read_meta(path)
    where = f"{path}: metadata key"
    tokenizer = tokenizer_from_dict(meta["tokenizer"], f"{where} 'tokenizer'")
    fbank = Fbank.from_dict(meta["features"], f"{where} 'features'")
    cmvn = GlobalCMVN.from_dict(meta["cmvn"], f"{where} 'cmvn'")
    lengths = (TrainingLengths.from_dict(meta["training_lengths"], f"{where} 'training_lengths'")
               if "training_lengths" in meta else None)
    model = build_model(meta["model_config"], f"{where} 'model_config'")
    try:
        model.load_state_dict(load_file(str(path), device=str(device)))
    except RuntimeError as e:  # missing, unexpected or mis-shaped weights
        first = str(e).strip().splitlines()
        raise ValueError(f"{path}: the weights do not fit the model config ({' '.join(first[:2])[:300]})") from None
    model.to(device).eval()
    return LoadedModel(model, tokenizer, fbank, cmvn, meta, lengths)
