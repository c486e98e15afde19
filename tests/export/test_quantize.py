"""Quantised and 16-bit variants: which MatMuls become int8 / fp16, metadata carried over, and the files decode."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper

from asr.export.format import PARTS, read_file_metadata
from asr.export.quantize import GROUPS, MODES, SENSITIVE_GROUPS, SENSITIVE_PARTS, group_nodes, quantize_folder, \
    weight_matmuls
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend

PART_FILES = {part: spec.file for part, spec in PARTS.items()}
INT8_MODES = [m for m, v in MODES.items() if v.int8]


@pytest.fixture(scope="module")
def variants(random_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("quantized")
    return {mode: (out / mode, quantize_folder(random_onnx, out / mode, mode)) for mode in MODES}


def float_matmuls(path) -> set[str]:
    return {n.name for n in onnx.load(str(path)).graph.node if n.op_type == "MatMul"}


def folder_bytes(folder) -> int:
    return sum((folder / n).stat().st_size for n in PART_FILES.values())


def test_groups_cover_every_weight_matmul(random_onnx):
    for name in PART_FILES.values():
        names = weight_matmuls(onnx.load(str(random_onnx / name)))
        assert names and group_nodes(names, tuple(GROUPS)) == names


@pytest.mark.parametrize("mode", INT8_MODES)
def test_only_the_chosen_weight_matmuls_are_quantized(mode, variants, random_onnx):
    folder, kept = variants[mode]
    for part, name in PART_FILES.items():
        fp32 = onnx.load(str(random_onnx / name))
        weights = set(weight_matmuls(fp32))
        whole = part in MODES[mode].keep_parts
        expected_float = weights if whole else set(group_nodes(sorted(weights), MODES[mode].keep))
        assert set(kept[part]) == expected_float
        still_float = float_matmuls(folder / name)
        assert still_float & weights == expected_float  # the rest of the weight MatMuls are int8
        assert still_float - weights == float_matmuls(random_onnx / name) - weights  # attention scores stay float
        meta = read_file_metadata(folder / name)
        assert meta["tokenizer"] == read_file_metadata(random_onnx / name)["tokenizer"]
        assert meta["quantization"] == MODES[mode].describe()
    assert (folder / "units.txt").read_bytes() == (random_onnx / "units.txt").read_bytes()


def test_per_channel_scales_have_one_value_per_output_column(variants):
    for mode, expect_vector in (("int8", False), ("int8_channel", True)):
        model = onnx.load(str(variants[mode][0] / PART_FILES["encoder"]))
        scales = [numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("_scale")]
        assert scales and any(s.size > 1 for s in scales) == expect_vector


def test_mixed_fp16_computes_the_sensitive_groups_in_fp16(variants, random_onnx):
    folder, kept = variants["mixed_fp16"]
    for part, name in PART_FILES.items():
        model = onnx.load(str(folder / name))
        inits = {i.name: i.data_type for i in model.graph.initializer}
        nodes = {n.name: n for n in model.graph.node}
        weights = weight_matmuls(onnx.load(str(random_onnx / name)))
        assert kept[part] == (weights if part in SENSITIVE_PARTS else group_nodes(weights, SENSITIVE_GROUPS))
        for matmul in kept[part]:
            assert inits[nodes[matmul].input[1]] == TensorProto.FLOAT16
            assert nodes[matmul + "/cast_in"].output[0] == nodes[matmul].input[0]


def test_fp16_model_keeps_fp32_io_and_halves_the_weights(variants, random_onnx):
    folder, _ = variants["fp16"]
    assert folder_bytes(folder) < 0.65 * folder_bytes(random_onnx)
    for name in PART_FILES.values():
        model = onnx.load(str(folder / name))
        assert [i.type.tensor_type.elem_type for i in model.graph.input] == \
            [i.type.tensor_type.elem_type for i in onnx.load(str(random_onnx / name)).graph.input]
        big = [i for i in model.graph.initializer if np.prod(i.dims) >= 1024]
        assert big and all(i.data_type == TensorProto.FLOAT16 for i in big)
        assert not any(n.op_type == "MatMulInteger" for n in model.graph.node)


@pytest.mark.parametrize("mode", list(MODES))
def test_files_declare_only_the_opsets_they_use(mode, variants):
    for name in PART_FILES.values():
        model = onnx.load(str(variants[mode][0] / name))
        used = {n.domain or "" for n in model.graph.node} | {""}
        assert {o.domain or "" for o in model.opset_import} == used


def test_sizes_order_and_every_variant_decodes_close_to_fp32(variants, random_onnx):
    sizes = {mode: folder_bytes(folder) for mode, (folder, _) in variants.items()}
    fp32_size = folder_bytes(random_onnx)
    assert sizes["int8"] < sizes["mixed_fp16"] < sizes["mixed"] < fp32_size
    feats, lens = torch.randn(2, 90, 80), torch.tensor([90, 60])
    ref = OnnxRuntimeBackend(random_onnx, num_threads=1)
    ref_out, ref_lens = ref.encode(feats, lens)
    ref_lp = ref.ctc_log_probs(ref_out)
    errors = {}
    for mode, (folder, _) in variants.items():
        backend = OnnxRuntimeBackend(folder, num_threads=1)
        enc_out, enc_lens = backend.encode(feats, lens)
        assert enc_out.shape == ref_out.shape and np.array_equal(enc_lens, ref_lens)
        log_probs = backend.ctc_log_probs(enc_out)
        assert np.allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-3)
        errors[mode] = float(np.abs(log_probs - ref_lp).max())
    # fp16 rounds every weight by ~1e-3 relative; int8 by ~1e-2: the fp16 model must be the closest.
    assert errors["fp16"] == min(errors.values())
