"""What a model config read from a file may contain, checked without importing torch.

The exported folders carry the architecture (``model_config``) as data; the torch-free runtime checks it
against this table, and :mod:`asr.model.registry` (which builds the classes) checks with the same function.
:data:`SCHEMA` lists, for every class a file may build (spelled as its own ``module.QualifiedName``), its
``__init__`` keywords, which of them are required and which take a sub-module config.
``tests/model/test_config_schema.py`` compares the table with the real classes' signatures, so a class that
gains or loses a keyword fails the tests until the table says the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asr.utils.untrusted import is_scalar_or_list

TARGET = "_target_"


@dataclass(frozen=True)
class ClassSchema:
    """One buildable class: its short name (for messages), keywords, required keywords and sub-module keywords."""

    name: str
    keywords: tuple[str, ...]
    required: frozenset[str] = frozenset()
    module_args: frozenset[str] = frozenset()
    root: bool = False  # what a model file's top level must build


SCHEMA: dict[str, ClassSchema] = {
    "asr.model.asr_model.ASRModel": ClassSchema(
        "ASRModel",
        ("vocab_size", "encoder", "decoder", "ctc", "att_loss", "ctc_weight", "r2l_decoder", "reverse_weight",
         "ctc_focal_gamma", "sos_id", "eos_id", "ignore_id"),
        frozenset({"vocab_size", "encoder", "decoder", "ctc", "att_loss"}),
        frozenset({"encoder", "decoder", "ctc", "att_loss", "r2l_decoder"}), root=True),
    "asr.model.encoder.ConformerEncoder": ClassSchema(
        "ConformerEncoder",
        ("input_dim", "d_model", "num_heads", "num_blocks", "ffn_dim", "kernel_size", "dropout", "attn_dropout",
         "subsampling", "pos_enc", "use_conv", "macaron", "conv_norm", "ffn_activation", "use_sdpa",
         "subsampling_channels", "streaming", "causal", "max_chunk_size", "num_left_chunks", "full_context_prob",
         "chunk_only_steps")),
    "asr.model.decoder.TransformerDecoder": ClassSchema(
        "TransformerDecoder",
        ("vocab_size", "d_model", "num_heads", "num_blocks", "ffn_dim", "dropout", "attn_dropout", "use_sdpa"),
        frozenset({"vocab_size"})),
    "asr.model.ctc.CTCHead": ClassSchema("CTCHead", ("vocab_size", "d_model", "blank_id"),
                                         frozenset({"vocab_size", "d_model"})),
    "asr.losses.label_smoothing.LabelSmoothingLoss": ClassSchema(
        "LabelSmoothingLoss", ("vocab_size", "smoothing", "ignore_id", "normalize"), frozenset({"vocab_size"})),
    "asr.losses.focal.FocalLoss": ClassSchema(
        "FocalLoss", ("vocab_size", "gamma", "smoothing", "alpha", "ignore_id", "normalize"), frozenset({"vocab_size"})),
}


def check_node(cfg: Any, where: str) -> ClassSchema:
    """Check one config node (recursively); return its class's schema.

    Raises:
        ValueError: starting with ``where`` and naming the offending key.
    """
    if not isinstance(cfg, dict):
        raise ValueError(f"{where}: expected an object with {TARGET}, got {type(cfg).__name__}")
    target = cfg.get(TARGET)
    if not isinstance(target, str) or target not in SCHEMA:
        raise ValueError(f"{where}.{TARGET}: {target!r} is not a model class of this project; allowed: "
                         f"{sorted(SCHEMA)}")
    schema = SCHEMA[target]
    for key, value in cfg.items():
        path = f"{where}.{key}"
        if key == TARGET:
            continue
        if not isinstance(key, str) or key.startswith("_"):
            raise ValueError(f"{path}: special key {key!r} is not honoured in a config read from a file")
        if key not in schema.keywords:
            raise ValueError(f"{path}: {schema.name} has no keyword argument {key!r}; allowed: "
                             f"{sorted(schema.keywords)}")
        if key in schema.module_args:
            if value is not None:
                check_node(value, path)
        elif not is_scalar_or_list(value):
            raise ValueError(f"{path}: must be a string, number, boolean, null or a list of them, "
                             f"got {type(value).__name__}")
    missing = [name for name in schema.keywords if name in schema.required and name not in cfg]
    if missing:
        raise ValueError(f"{where}: {schema.name} needs keyword argument(s) {missing}")
    return schema


def check_model_config(cfg: Any, where: str) -> None:
    """Raise ValueError (starting with ``where``) unless ``cfg`` is a model config the registry would build."""
    schema = check_node(cfg, where)
    if not schema.root:
        roots = [s.name for s in SCHEMA.values() if s.root]
        raise ValueError(f"{where}.{TARGET}: a model file must build {roots}, not {schema.name}")
