"""The ONNX Runtime backend: the three exported parts of ``python -m export`` on CPU (or any provider).

A model folder holds ``encoder.onnx``, ``ctc.onnx``, ``decoder.onnx`` and ``units.txt``. Each ONNX
file carries the decoding metadata (tokenizer, features, CMVN, special ids, profile) in its
``metadata_props``; :func:`read_onnx_metadata` reads it and :func:`decoding_parts` rebuilds the
tokenizer, feature extractor and CMVN from it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from asr.features.cmvn import GlobalCMVN
from asr.features.fbank import Fbank
from asr.inference.backends.base import UnsupportedOperation
from asr.tokenizer import Tokenizer, tokenizer_from_dict

EXPORT_FORMAT_VERSION = 1
PART_FILES = {"encoder": "encoder.onnx", "ctc": "ctc.onnx", "decoder": "decoder.onnx"}


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an exported ONNX file, after checking its export format version."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file (export one with `python -m export`)")
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    version = meta.get("export_format_version")
    if version != str(EXPORT_FORMAT_VERSION):
        raise ValueError(f"{path}: export format version {version!r}, this code reads {EXPORT_FORMAT_VERSION} "
                         "(re-export it with `python -m export`)")
    return meta


def read_folder_metadata(model_dir: str | os.PathLike, kind: str) -> dict[str, str]:
    """Metadata of a model folder, checking its three files come from one export of profile ``kind``.

    Args:
        model_dir: folder with ``encoder.onnx``, ``ctc.onnx`` and ``decoder.onnx``.
        kind: ``"dynamic"`` or ``"static"``.

    Returns:
        The encoder file's metadata.
    """
    metas = {part: read_onnx_metadata(Path(model_dir) / name) for part, name in PART_FILES.items()}
    versions = {part: m["model_version"] for part, m in metas.items()}
    if len(set(versions.values())) != 1:
        raise ValueError(f"{model_dir}: files come from different models {versions}; re-export the folder")
    found = json.loads(metas["encoder"]["profile"])["kind"]
    if found != kind:
        hint = "use the om backend (runtime onnxruntime)" if found == "static" else "export a static profile"
        raise ValueError(f"{model_dir}: holds a {found}-shape export, a {kind} one is needed ({hint})")
    return metas["encoder"]


def decoding_parts(meta: dict[str, str]) -> tuple[Tokenizer, Fbank, GlobalCMVN]:
    """Tokenizer, feature extractor and CMVN from an exported file's metadata."""
    return (tokenizer_from_dict(json.loads(meta["tokenizer"])), Fbank(**json.loads(meta["features"])),
            GlobalCMVN.from_dict(json.loads(meta["cmvn"])))


def session_options(num_threads: int | None = None) -> ort.SessionOptions:
    """CPU session options: ``num_threads`` intra-op threads (None = ONNX Runtime's default, all cores)."""
    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    return options


class OnnxRuntimeBackend:
    """Implements :class:`asr.inference.backends.base.Backend` with dynamic-shape ONNX files.

    Args:
        model_dir: folder written by ``python -m export`` (fp32, ``int8`` or ``mixed``).
        num_threads: intra-op threads per session (None = all cores).
        providers: ONNX Runtime execution providers, in order of preference.

    Attributes:
        meta: the files' metadata (see ``export.onnx.export_metadata``).
        tokenizer, fbank, cmvn: rebuilt from the metadata.
    """

    device = torch.device("cpu")

    def __init__(self, model_dir: str | os.PathLike, num_threads: int | None = None,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        self.model_dir = Path(model_dir)
        self.meta = read_folder_metadata(self.model_dir, "dynamic")
        self.tokenizer, self.fbank, self.cmvn = decoding_parts(self.meta)
        self.min_input_frames = int(self.meta["min_input_frames"])
        options = session_options(num_threads)
        self.sessions = {part: ort.InferenceSession(str(self.model_dir / name), options, providers=list(providers))
                         for part, name in PART_FILES.items()}

    def _run(self, part: str, **inputs: torch.Tensor) -> list[np.ndarray]:
        feeds = {name: x.detach().cpu().numpy() for name, x in inputs.items()}
        return self.sessions[part].run(None, feeds)

    def encode(self, feats: torch.Tensor, feats_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: feats: (B, T, F) float32; feats_lens: (B,) int64. Returns: enc_out (B, T', D), enc_lens (B,)."""
        if feats.size(1) < self.min_input_frames:
            raise ValueError(f"{feats.size(1)} frames is too short for the encoder "
                             f"(needs at least {self.min_input_frames})")
        enc_out, enc_lens = self._run("encoder", feats=feats.float(), feats_lens=feats_lens.long())
        return torch.from_numpy(enc_out), torch.from_numpy(enc_lens)

    def ctc_log_probs(self, enc_out: torch.Tensor) -> torch.Tensor:
        """Args: enc_out: (B, T', D). Returns: (B, T', V) log-probabilities."""
        return torch.from_numpy(self._run("ctc", enc_out=enc_out.float())[0])

    def decoder_scores(self, enc_out: torch.Tensor, enc_lens: torch.Tensor, hyps: torch.Tensor,
                       hyps_lens: torch.Tensor) -> torch.Tensor:
        """Args: enc_out: (N, T', D); enc_lens, hyps_lens: (N,) int64; hyps: (N, L) int64. Returns: (N,)."""
        (scores,) = self._run("decoder", enc_out=enc_out.float(), enc_lens=enc_lens.long(), hyps=hyps.long(),
                              hyps_lens=hyps_lens.long())
        return torch.from_numpy(scores)

    def decoder_step(self, enc_out: torch.Tensor, enc_lens: torch.Tensor, ys_in: torch.Tensor) -> torch.Tensor:
        """Not exported: the ``attention`` mode needs the torch backend."""
        raise UnsupportedOperation("onnxruntime backend: no decoder step is exported; use the attention_rescoring "
                                   "mode or the torch backend for attention beam search")
