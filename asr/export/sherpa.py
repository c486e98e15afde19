"""Export for sherpa-onnx: a CTC model in the layout of its WeNet-CTC loader (``OfflineRecognizer.from_wenet_ctc``,
``sherpa-onnx-offline --wenet-ctc-model``).

    python -m asr.export --model exp/demo/model.safetensors --out exp/demo/sherpa-onnx --format sherpa-onnx

writes ``model.onnx`` and ``tokens.txt``:

* ``model.onnx``: global CMVN, the encoder and the CTC head in one graph: ``x (N, T, F) float32`` (raw Kaldi
  fbank, as sherpa-onnx computes it), ``x_lens (N,) int64`` -> ``log_probs (N, T', V)`` (log-softmax) and
  ``log_probs_len (N,) int64``; metadata ``vocab_size`` and ``subsampling_factor`` (the two keys that loader
  reads), plus ours for people (``producer``, ``model_version``, ``fbank_options``, ``comment``).
* ``tokens.txt``: ``unit id`` per line; the blank is ``<blank>`` (one of the names sherpa-onnx looks for, and the
  one it takes for WeNet models).

Features: for WeNet CTC models sherpa-onnx scales samples by 32768 as our fbank does, and computes a Kaldi fbank
with kaldi-native-fbank. Its defaults differ from the training features in two options (``snip_edges`` false,
``high_freq`` -400, i.e. a 7.6 kHz top band): :func:`sherpa_feature_config` gives the options that reproduce ours
(``sherpa_onnx.FeatureExtractorConfig``; its command line has ``--high-freq`` but no ``snip_edges``).
Settings sherpa-onnx cannot express (another window, frame length or pre-emphasis) are refused at export.
"""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from asr.export.format import PRODUCER
from asr.export.onnx import OPSET, producer_version
from asr.export.wrappers import explicit_attention
from asr.features.fbank import Fbank
from asr.model.frames import SUBSAMPLING_LAYERS
from asr.modelfile import LoadedModel
from asr.utils.io import atomic_write

# The Kaldi options sherpa-onnx's feature extractor fixes (kaldi-native-fbank defaults it does not change).
SHERPA_FIXED = {"frame_length_ms": 25.0, "frame_shift_ms": 10.0, "preemphasis": 0.97, "window_type": "povey",
                "remove_dc_offset": True, "round_to_power_of_two": True, "energy_floor": 0.0, "use_energy": False,
                "raw_energy": True, "use_log_fbank": True, "use_power": True, "htk_compat": False,
                "waveform_scale": 32768.0}


def sherpa_feature_config(fbank: Fbank) -> dict:
    """Keyword arguments of ``sherpa_onnx.FeatureExtractorConfig`` giving this model's training features.

    Raises:
        ValueError: an option sherpa-onnx fixes to another value (naming it).
    """
    options = fbank.kaldi_options()
    if wrong := {k: options[k] for k, v in SHERPA_FIXED.items() if options[k] != v}:
        fixed = {k: SHERPA_FIXED[k] for k in wrong}
        raise ValueError(f"sherpa-onnx computes its fbank with {fixed}; this model was trained with {wrong}")
    return {"sampling_rate": options["sample_rate"], "feature_dim": options["num_mel_bins"],
            "low_freq": options["low_freq"], "high_freq": options["high_freq"], "dither": options["dither"],
            "snip_edges": options["snip_edges"]}


class SherpaCTC(nn.Module):
    """CMVN, encoder and CTC head: raw fbank in, CTC log-probabilities out (the WeNet-CTC signature)."""

    def __init__(self, loaded: LoadedModel):
        super().__init__()
        self.model = loaded.model
        self.register_buffer("mean", torch.from_numpy(loaded.cmvn.mean.copy()))
        self.register_buffer("istd", torch.from_numpy(loaded.cmvn.istd.copy()))

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x: (N, T, F) float, fbank before CMVN; x_lens: (N,) int64.

        Returns: log_probs (N, T', V) float; log_probs_len (N,) int64.
        """
        feats = (x - self.mean) * self.istd  # (N, T, F)
        enc_out, enc_lens = self.model.encode(feats, x_lens)  # (N, T', D), (N,)
        return self.model.ctc_log_probs(enc_out), enc_lens


def export_sherpa_onnx(loaded: LoadedModel, out_dir: str | os.PathLike, model_version: str) -> dict[str, Path]:
    """Write ``model.onnx`` and ``tokens.txt`` (see the module docstring) into ``out_dir``.

    Returns:
        The two paths, by name (``model``, ``tokens``).
    """
    feature_config = sherpa_feature_config(loaded.fbank)  # refuses what sherpa-onnx cannot compute
    if loaded.tokenizer.units[loaded.model.ctc.blank_id] != "<blank>":
        raise ValueError(f"sherpa-onnx finds the CTC blank by the name <blank>; unit {loaded.model.ctc.blank_id} is "
                         f"{loaded.tokenizer.units[loaded.model.ctc.blank_id]!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wrapper = SherpaCTC(loaded).eval()
    args = example_inputs(loaded, 67, (67, 40))
    buffer = io.BytesIO()
    with torch.no_grad(), explicit_attention(loaded.model), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding")
        torch.onnx.export(wrapper, args, buffer, input_names=["x", "x_lens"], output_names=["log_probs", "log_probs_len"],
                          dynamic_axes={"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "log_probs": {0: "N", 1: "T'"},
                                        "log_probs_len": {0: "N"}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    rate = 1
    for _, stride in SUBSAMPLING_LAYERS[loaded.model.encoder.subsampling.subsampling]:
        rate *= stride
    options = ", ".join(f"{k}={v!r}" for k, v in feature_config.items())
    onnx.helper.set_model_props(proto, {
        "vocab_size": str(loaded.model.vocab_size), "subsampling_factor": str(rate),
        "producer": f"{PRODUCER} {producer_version()}", "model_version": model_version,
        "fbank_options": json.dumps(loaded.fbank.kaldi_options()),
        "comment": f"CMVN + encoder + CTC head of a {PRODUCER} model for sherpa-onnx's WeNet-CTC loader; features: "
                   f"sherpa_onnx.FeatureExtractorConfig({options})",
    })
    onnx.checker.check_model(proto)
    paths = {"model": out_dir / "model.onnx", "tokens": out_dir / "tokens.txt"}
    with atomic_write(paths["model"], "wb") as f:
        f.write(proto.SerializeToString())
    with atomic_write(paths["tokens"]) as f:
        f.writelines(f"{unit} {i}\n" for i, unit in enumerate(loaded.tokenizer.units))
    return paths


def example_inputs(loaded: LoadedModel, frames: int, lens: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random raw fbank around the CMVN mean: x (N, frames, F), x_lens (N,) int64 (``lens``, the first = frames)."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.from_numpy(loaded.cmvn.mean)
    std = 1 / torch.from_numpy(loaded.cmvn.istd)
    x = mean + std * torch.randn(len(lens), frames, loaded.fbank.num_mel_bins, generator=g)  # (N, T, F)
    return x, torch.tensor(lens, dtype=torch.long)


def sherpa_parity(loaded: LoadedModel, model_path: str | os.PathLike, seed: int = 1) -> float:
    """Largest |ONNX Runtime - PyTorch| of the log-probabilities over valid frames, on random sizes (inf when
    the lengths differ)."""
    import onnxruntime as ort  # noqa: PLC0415

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    wrapper, worst = SherpaCTC(loaded).eval(), 0.0
    for i, lens in enumerate(((230,), (301, 101, 17), (45, 45))):
        x, x_lens = example_inputs(loaded, lens[0], lens, seed + i)
        with torch.no_grad():
            ref, ref_lens = wrapper(x, x_lens)
        got, got_lens = session.run(None, {"x": x.numpy(), "x_lens": x_lens.numpy()})
        if not np.array_equal(got_lens, ref_lens.numpy()):
            return float("inf")
        for b, n in enumerate(got_lens):
            worst = max(worst, float(np.abs(got[b, :n] - ref[b, :n].numpy()).max(initial=0.0)))
    return worst
