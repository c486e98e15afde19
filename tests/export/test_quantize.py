"""Quantised variants: which MatMuls become int8, metadata carried over, and the files decode."""
from __future__ import annotations

import onnx
import pytest
import numpy as np
import torch

from asr.export.format import PARTS, read_file_metadata
from asr.export.quantize import GROUPS, SENSITIVE_GROUPS, group_nodes, quantize_folder, weight_matmuls
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend

PART_FILES = {part: spec.file for part, spec in PARTS.items()}


@pytest.fixture(scope="module")
def variants(random_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("quantized")
    return {mode: (out / mode, quantize_folder(random_onnx, out / mode, mode)) for mode in ("int8", "mixed")}


def float_matmuls(path) -> set[str]:
    return {n.name for n in onnx.load(str(path)).graph.node if n.op_type == "MatMul"}


def test_groups_cover_every_weight_matmul(random_onnx):
    for name in PART_FILES.values():
        names = weight_matmuls(onnx.load(str(random_onnx / name)))
        assert names and group_nodes(names, tuple(GROUPS)) == names


@pytest.mark.parametrize("mode", ["int8", "mixed"])
def test_only_the_chosen_weight_matmuls_are_quantized(mode, variants, random_onnx):
    folder, kept = variants[mode]
    for part, name in PART_FILES.items():
        fp32 = onnx.load(str(random_onnx / name))
        weights = set(weight_matmuls(fp32))
        expected_float = set(group_nodes(sorted(weights), SENSITIVE_GROUPS)) if mode == "mixed" else set()
        assert set(kept[part]) == expected_float
        still_float = float_matmuls(folder / name)
        assert still_float & weights == expected_float  # the rest of the weight MatMuls are int8
        assert still_float - weights == float_matmuls(random_onnx / name) - weights  # attention scores stay float
        meta = read_file_metadata(folder / name)
        assert meta["tokenizer"] == read_file_metadata(random_onnx / name)["tokenizer"]
        assert meta["quantization"].startswith("int8")
    assert (folder / "units.txt").read_bytes() == (random_onnx / "units.txt").read_bytes()


def test_mixed_is_larger_than_int8_and_both_decode_like_fp32_shapes(variants, random_onnx):
    sizes = {mode: sum((folder / n).stat().st_size for n in PART_FILES.values())
             for mode, (folder, _) in variants.items()}
    fp32_size = sum((random_onnx / n).stat().st_size for n in PART_FILES.values())
    assert sizes["int8"] < sizes["mixed"] < fp32_size
    feats, lens = torch.randn(2, 90, 80), torch.tensor([90, 60])
    ref = OnnxRuntimeBackend(random_onnx, num_threads=1)
    ref_out, ref_lens = ref.encode(feats, lens)
    for folder, _ in variants.values():
        backend = OnnxRuntimeBackend(folder, num_threads=1)
        enc_out, enc_lens = backend.encode(feats, lens)
        assert enc_out.shape == ref_out.shape and np.array_equal(enc_lens, ref_lens)
        log_probs = backend.ctc_log_probs(enc_out)
        assert np.allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-4)
