"""The exported model folder: its part files, their signatures, the format version and the metadata.

The one module that knows the on-disk format of ``python -m asr.export``; the exporter writes through it and
every backend (ONNX Runtime, Ascend OM) reads through it.

A folder holds ``encoder.onnx``, ``ctc.onnx``, ``decoder.onnx`` (the :data:`PARTS`) and ``units.txt``, and
for streaming ``encoder_chunk.onnx`` (the :data:`STREAMING_PARTS`: one chunk of the encoder with its caches as
explicit inputs and outputs, all shapes fixed, with a ``streaming`` metadata key saying which chunk). Every
ONNX file carries the whole decoding metadata in its ``metadata_props`` (string values, see
:data:`METADATA_KEYS`), so one file is enough to rebuild the tokenizer, features and CMVN. A static (Ascend)
profile is the same layout with fixed shapes, its ``profile`` metadata says which.

Metadata is data: :func:`read_file_metadata` parses it, checks every key and type, and never instantiates
anything (the stored ``model_config`` is only checked against the model registry, see
:mod:`asr.model.registry`); a problem is a ``ValueError`` naming the file and the key.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from asr.data.lengths import TrainingLengths
from asr.features.cmvn import GlobalCMVN
from asr.features.fbank import Fbank
from asr.tokenizer import Tokenizer, tokenizer_from_dict
from asr.utils.untrusted import parse_json

FORMAT_VERSION = 1


@dataclass(frozen=True)
class PartSpec:
    """One exported part: file name, input and output names (in graph order) and dynamic axes."""

    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]


# The model is cut at the same places for every runtime:
#   encoder: feats (B, T, F) float32, feats_lens (B,) int64 -> enc_out (B, T', D), enc_lens (B,) int64
#            (features already CMVN-normalised; CMVN travels as metadata)
#   ctc:     enc_out (B, T', D) -> log_probs (B, T', V)
#   decoder: enc_out (N, T', D), enc_lens (N,), hyps (N, L) int64, hyps_lens (N,) -> scores (N,),
#            log P(hyp + <eos>) with <sos> prepended inside (hyps hold neither)
PARTS: dict[str, PartSpec] = {
    "encoder": PartSpec(
        "encoder.onnx", ("feats", "feats_lens"), ("enc_out", "enc_lens"),
        {"feats": {0: "B", 1: "T"}, "feats_lens": {0: "B"}, "enc_out": {0: "B", 1: "T'"}, "enc_lens": {0: "B"}},
    ),
    "ctc": PartSpec(
        "ctc.onnx", ("enc_out",), ("log_probs",),
        {"enc_out": {0: "B", 1: "T'"}, "log_probs": {0: "B", 1: "T'"}},
    ),
    "decoder": PartSpec(
        "decoder.onnx", ("enc_out", "enc_lens", "hyps", "hyps_lens"), ("scores",),
        {"enc_out": {0: "N", 1: "T'"}, "enc_lens": {0: "N"}, "hyps": {0: "N", 1: "L"}, "hyps_lens": {0: "N"},
         "scores": {0: "N"}},
    ),
}

# The streaming encoder: one chunk of a stream (batch 1), every shape fixed (the same graph under ONNX Runtime and,
# as a static profile, under Ascend ATC). The state goes in and comes out; nothing is kept in the graph:
#   feats (1, W, F) float32: the chunk's features with the subsampling's right context, W = (C-1)*rate + T_min,
#       zero-padded at the end of a stream, feats_lens (1,) int64 the valid ones;
#   offset (1,) int64: encoder frames of the stream before this chunk (absolute and rotary positions);
#   att_cache (N, 1, H, L, 2*D/H) float32: keys and values of the last L = C * left_chunks frames of every block,
#       cache_len (1,) int64 how many of them are real (the newest are last; empty slots are masked out);
#   cnn_cache (N, 1, D, K-1) float32: the causal convolutions' last inputs (zeros at the start);
#   -> enc_out (1, C, D), enc_lens (1,) int64 (frames past it are padding), next_offset, next_att_cache,
#      next_cache_len, next_cnn_cache (the inputs of the next chunk).
STREAMING_PARTS: dict[str, PartSpec] = {
    "encoder_chunk": PartSpec(
        "encoder_chunk.onnx", ("feats", "feats_lens", "offset", "att_cache", "cache_len", "cnn_cache"),
        ("enc_out", "enc_lens", "next_offset", "next_att_cache", "next_cache_len", "next_cnn_cache"), {},
    ),
}
STREAMING_KEYS = ("chunk_size", "num_left_chunks", "cache_size", "input_frames", "stride", "min_input_frames")

# key -> (kind, meaning). kinds: int, str, json (a JSON document).
METADATA_KEYS: dict[str, tuple[str, str]] = {
    "export_format_version": ("int", "this module's FORMAT_VERSION"),
    "model_version": ("str", "identifies the weights (digest of the model file)"),
    "part": ("str", "which of PARTS the file is"),
    "opset": ("int", "ONNX opset"),
    "vocab_size": ("int", "output units V"),
    "blank_id": ("int", "CTC blank"),
    "sos_id": ("int", "start symbol the decoder prepends"),
    "eos_id": ("int", "end symbol the decoder scores last"),
    "subsampling": ("str", "subsampling name (asr.model.subsampling)"),
    "subsampling_rate": ("int", "input frames per encoder frame"),
    "min_input_frames": ("int", "shortest input giving one encoder frame"),
    "d_model": ("int", "encoder dimension D"),
    "features": ("json", "fbank settings (asr.features.fbank.Fbank)"),
    "cmvn": ("json", "global CMVN statistics"),
    "tokenizer": ("json", "the units (asr.tokenizer)"),
    "model_config": ("json", "the architecture, as in the model file (checked, never built here)"),
    "profile": ("json", '{"kind": "dynamic"} or the static profile (asr.export.om.static_profile)'),
}
OPTIONAL_METADATA_KEYS: dict[str, tuple[str, str]] = {
    "quantization": ("str", "what asr.export.quantize did, e.g. 'int8 except ctc_out,...'"),
    "streaming": ("json", "the encoder_chunk part's chunk (and only its): " + ", ".join(STREAMING_KEYS)),
    "training_lengths": ("json", "duration statistics of the training utterances (asr.data.lengths), when the "
                                 "model file has them"),
}
PROFILE_KINDS = ("dynamic", "static")


def metadata_props(values: dict) -> dict[str, str]:
    """The ``metadata_props`` of one exported file: every key of :data:`METADATA_KEYS` as a string.

    Args:
        values: every key but ``export_format_version``, and any of :data:`OPTIONAL_METADATA_KEYS` (None
            leaves one out); ``json`` kinds as Python values, the others as ints or strings.

    Raises:
        ValueError: a key missing or unknown.
    """
    values = {"export_format_version": FORMAT_VERSION, **{k: v for k, v in values.items() if v is not None}}
    kinds = {**METADATA_KEYS, **OPTIONAL_METADATA_KEYS}
    if missing := sorted(set(METADATA_KEYS) - set(values)):
        raise ValueError(f"export metadata lacks {missing}")
    if unknown := sorted(set(values) - set(kinds)):
        raise ValueError(f"export metadata has unknown keys {unknown}")
    return {key: json.dumps(v, ensure_ascii=False) if kinds[key][0] == "json" else str(v)
            for key, v in values.items()}


def parse_metadata(props: dict[str, str], where: str) -> dict:
    """Check and parse raw ``metadata_props``: ints as ints, JSON documents as data.

    Args:
        props: key -> string, as stored.
        where: the file, for messages.

    Returns:
        key -> value (``json`` kinds parsed; keys this version does not know are left out).

    Raises:
        ValueError: naming ``where`` and the key: a wrong version, a missing key, a value of the wrong kind.
    """
    version = props.get("export_format_version")
    if version != str(FORMAT_VERSION):
        raise ValueError(f"{where}: export format version {version!r}, this code reads {FORMAT_VERSION} "
                         "(re-export it with `python -m asr.export`)")
    out = {}
    for key, (kind, _) in {**METADATA_KEYS, **OPTIONAL_METADATA_KEYS}.items():
        if key not in props:
            if key in OPTIONAL_METADATA_KEYS:
                continue
            raise ValueError(f"{where}: metadata key {key!r} is missing")
        raw = props[key]
        if kind == "int":
            if not raw.lstrip("-").isdigit():
                raise ValueError(f"{where}: metadata key {key!r} must be an integer, got {raw[:40]!r}")
            out[key] = int(raw)
        elif kind == "json":
            out[key] = parse_json(raw, f"{where}: metadata key {key!r}")
        else:
            out[key] = raw
    if out["part"] not in PARTS and out["part"] not in STREAMING_PARTS:
        raise ValueError(f"{where}: metadata key 'part' is {out['part']!r}, expected one of "
                         f"{list(PARTS) + list(STREAMING_PARTS)}")
    if (out["part"] in STREAMING_PARTS) != ("streaming" in out):
        raise ValueError(f"{where}: metadata key 'streaming' belongs to the {list(STREAMING_PARTS)} part, and only "
                         f"to it (this file is the {out['part']} part)")
    if "streaming" in out:
        check_streaming(out["streaming"], f"{where}: metadata key 'streaming'")
    from asr.model.subsampling import SUBSAMPLING_LAYERS  # noqa: PLC0415

    if out["subsampling"] not in SUBSAMPLING_LAYERS:
        raise ValueError(f"{where}: metadata key 'subsampling' is {out['subsampling']!r}, expected one of "
                         f"{sorted(SUBSAMPLING_LAYERS)}")
    profile = out["profile"]
    if not isinstance(profile, dict) or profile.get("kind") not in PROFILE_KINDS:
        raise ValueError(f"{where}: metadata key 'profile' must be an object with kind in {list(PROFILE_KINDS)}")
    if profile["kind"] == "static":
        check_static_profile(profile, f"{where}: metadata key 'profile'")
    if "training_lengths" in out:
        TrainingLengths.from_dict(out["training_lengths"], f"{where}: metadata key 'training_lengths'")
    from asr.model.registry import check_model_config  # noqa: PLC0415 (the registry imports the model classes)

    check_model_config(out["model_config"], f"{where}: metadata key 'model_config'")
    return out


STATIC_PROFILE_SIZES = ("frames", "batch", "enc_frames", "num_hyps", "max_tokens")


def check_static_profile(profile: dict, where: str) -> dict:
    """Check a static profile's sizes (positive integers) and per-part shapes; return it."""
    for key in STATIC_PROFILE_SIZES:
        value = profile.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{where}: {key!r} must be a positive integer, got {value!r}")
    shapes = profile.get("shapes")
    if not isinstance(shapes, dict) or set(shapes) != set(PARTS) or not all(
            isinstance(v, dict) and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in v.values())
            for v in shapes.values()):
        raise ValueError(f"{where}: 'shapes' must give positive sizes for each of {list(PARTS)}")
    return profile


def check_streaming(streaming: dict, where: str) -> dict:
    """Check a chunk graph's ``streaming`` settings: positive integers (``num_left_chunks`` at least 1: a fixed
    cache) that agree with each other; return them."""
    if not isinstance(streaming, dict) or set(streaming) != set(STREAMING_KEYS):
        raise ValueError(f"{where}: must be an object with exactly the keys {list(STREAMING_KEYS)}")
    for key in STREAMING_KEYS:
        value = streaming[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{where}: {key!r} must be a positive integer, got {value!r}")
    chunk, rate = streaming["chunk_size"], streaming["stride"] // streaming["chunk_size"]
    if (streaming["stride"] != chunk * rate or streaming["cache_size"] != chunk * streaming["num_left_chunks"]
            or streaming["input_frames"] != (chunk - 1) * rate + streaming["min_input_frames"]):
        raise ValueError(f"{where}: inconsistent sizes {streaming}")
    return streaming


def read_file_metadata(path: str | os.PathLike) -> dict:
    """The checked metadata of one exported ONNX file (see :func:`parse_metadata`)."""
    import onnx  # noqa: PLC0415 (only readers of ONNX files need it)

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file (export one with `python -m asr.export`)")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends: name the file, whatever it was
        raise ValueError(f"{path}: not an ONNX file ({type(e).__name__})") from None
    return parse_metadata({p.key: p.value for p in proto.metadata_props}, str(path))


def read_folder_metadata(model_dir: str | os.PathLike, kind: str) -> dict:
    """Metadata of a model folder, checking its files are the parts of one export of profile ``kind``.

    Args:
        model_dir: folder with the files of :data:`PARTS`.
        kind: ``"dynamic"`` or ``"static"``.

    Returns:
        The encoder file's metadata.
    """
    return read_parts_metadata({part: Path(model_dir) / spec.file for part, spec in PARTS.items()}, kind, str(model_dir))


def read_parts_metadata(paths: Mapping[str, str | os.PathLike], kind: str, where: str) -> dict:
    """Like :func:`read_folder_metadata` for part files wherever they lie (a Triton model repository keeps each
    part in a folder of its own, as ``PART/1/model.onnx``).

    Args:
        paths: each part of :data:`PARTS` -> its file.
        kind: ``"dynamic"`` or ``"static"``.
        where: what the files are, for messages.

    Returns:
        The encoder file's metadata.
    """
    if set(paths) != set(PARTS):
        raise ValueError(f"{where}: needs the parts {list(PARTS)}, got {sorted(paths)}")
    metas = {part: read_file_metadata(paths[part]) for part in PARTS}
    for part, meta in metas.items():
        if meta["part"] != part:
            raise ValueError(f"{paths[part]}: holds the {meta['part']} part")
    versions = {part: m["model_version"] for part, m in metas.items()}
    if len(set(versions.values())) != 1:
        raise ValueError(f"{where}: files come from different models {versions}; re-export the folder")
    found = metas["encoder"]["profile"]["kind"]
    if found != kind:
        hint = "use the om backend (runtime onnxruntime)" if found == "static" else "export a static profile"
        raise ValueError(f"{where}: holds a {found}-shape export, a {kind} one is needed ({hint})")
    return metas["encoder"]


def read_streaming_metadata(model_dir: str | os.PathLike, kind: str) -> dict:
    """Metadata of a folder's streaming encoder (``encoder_chunk.onnx``), checked to come from the same model as
    its ``encoder.onnx`` and to have profile ``kind``.

    Raises:
        FileNotFoundError: the folder was exported without ``--streaming-chunk``.
        ValueError: as :func:`parse_metadata`, or another model or profile than the folder's.
    """
    spec = STREAMING_PARTS["encoder_chunk"]
    path = Path(model_dir) / spec.file
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no streaming encoder ({spec.file}); export one with `python -m "
                                "asr.export --streaming-chunk 16` (and --om-profile for the static profile)")
    meta = read_file_metadata(path)
    if meta["part"] != "encoder_chunk":
        raise ValueError(f"{path}: holds the {meta['part']} part")
    encoder = read_file_metadata(Path(model_dir) / PARTS["encoder"].file)
    if meta["model_version"] != encoder["model_version"]:
        raise ValueError(f"{path}: comes from model {meta['model_version']}, the folder's encoder from "
                         f"{encoder['model_version']}; re-export the folder")
    if meta["profile"]["kind"] != kind:
        raise ValueError(f"{path}: holds a {meta['profile']['kind']}-shape export, a {kind} one is needed")
    return meta


def training_lengths(meta: dict) -> TrainingLengths | None:
    """The training-length statistics of parsed metadata (checked by :func:`parse_metadata`), or None."""
    return TrainingLengths(**meta["training_lengths"]) if "training_lengths" in meta else None


def decoding_parts(meta: dict, where: str) -> tuple[Tokenizer, Fbank, GlobalCMVN]:
    """Tokenizer, feature extractor and CMVN from parsed metadata; ValueError naming ``where`` and the key."""
    return (tokenizer_from_dict(meta["tokenizer"], f"{where}: metadata key 'tokenizer'"),
            Fbank.from_dict(meta["features"], f"{where}: metadata key 'features'"),
            GlobalCMVN.from_dict(meta["cmvn"], f"{where}: metadata key 'cmvn'"))
