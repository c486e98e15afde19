"""The static (Ascend) profile: graph check, ATC script, and padding/windowing against the dynamic export."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from asr.inference.backends.om_backend import OMBackend, plan_windows
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from asr.model.subsampling import subsampled_length
from asr.export.ascend import profile_problems
from asr.export.om import KEEP_DTYPE_NAME, atc_command, profile_files, static_graph_problems, write_atc_script
from asr.export.format import PARTS, read_file_metadata

ROOT = Path(__file__).resolve().parents[2]


def onnx_profile(folder) -> dict:
    return read_file_metadata(folder / PARTS["encoder"].file)["profile"]


@pytest.fixture(scope="module")
def backends(random_onnx, random_static):
    static = OMBackend(random_static, runtime="onnxruntime", num_threads=1, context=8)
    yield OnnxRuntimeBackend(random_onnx, num_threads=1), static
    static.close()


def test_static_graphs_have_nothing_atc_rejects(random_static):
    for spec in PARTS.values():
        model = onnx.load(str(random_static / spec.file))
        assert static_graph_problems(random_static / spec.file) == []
        assert all(d.dim_value > 0 for i in model.graph.input for d in i.type.tensor_type.shape.dim)
        assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}


def test_graph_check_finds_negative_gather_and_dynamic_dims(tmp_path):
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 3])
    index = helper.make_tensor("index", TensorProto.INT64, [2], [0, -1])
    graph = helper.make_graph([helper.make_node("Gather", ["data", "index"], ["out"], name="g")], "g", [data], [out],
                              initializer=[index])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), path)
    problems = static_graph_problems(path)
    assert any("negative index -1" in p for p in problems)
    assert any("'data'" in p and "'N'" in p for p in problems)


@pytest.mark.parametrize("total,window,context", [(0, 50, 8), (30, 50, 8), (50, 50, 8), (51, 50, 8), (333, 50, 8),
                                                  (1000, 249, 16), (97, 20, 0)])
def test_windows_tile_the_utterance_with_context(total, window, context):
    plan = plan_windows(total, window, context)
    kept = [f for _, _, a, b in plan for f in range(a, b)]
    assert kept == list(range(total))
    for start, end, keep_start, keep_end in plan:
        assert 0 <= start <= keep_start < keep_end <= end <= total and end - start <= window
        assert keep_start - start >= context or start == 0
        assert end - keep_end >= context or end == total


def test_short_input_matches_the_dynamic_export(backends):
    dynamic, static = backends
    g = torch.Generator().manual_seed(0)
    p = static.profile
    assert p["batch"] == 2
    lens = torch.tensor([p["frames"], 150, 40])  # 3 utterances: two encoder calls, the second padded
    feats = torch.randn(3, int(lens.max()), 80, generator=g)
    (a, a_lens), (b, b_lens) = [map(torch.from_numpy, backend.encode(feats, lens)) for backend in (dynamic, static)]
    assert torch.equal(a_lens, b_lens)
    for i, n in enumerate(a_lens.tolist()):
        torch.testing.assert_close(b[i, :n], a[i, :n], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(static.ctc_log_probs(a), dynamic.ctc_log_probs(a), atol=1e-4, rtol=1e-4)

    n_hyps = 2 * p["num_hyps"] + 1  # three decoder calls, the last one padded
    rows = torch.arange(n_hyps) % 3
    hyps = torch.randint(1, int(static.meta["vocab_size"]) - 1, (n_hyps, 9), generator=g)
    hyps_lens = torch.randint(0, 10, (n_hyps,), generator=g)
    args = (a[rows], a_lens[rows], hyps, hyps_lens)
    np.testing.assert_allclose(static.decoder_scores(*args), dynamic.decoder_scores(*args), atol=1e-4, rtol=1e-4)


def test_long_input_matches_the_dynamic_export_window_by_window(backends):
    dynamic, static = backends
    g = torch.Generator().manual_seed(1)
    frames = static.profile["frames"]
    lens = torch.tensor([3 * frames + 57, 2 * frames])
    feats = torch.randn(2, int(lens.max()), 80, generator=g)
    enc_out, enc_lens = static.encode(feats, lens)
    window, rate, receptive = static.profile["enc_frames"], static.rate, static.min_input_frames
    for b, n in enumerate(lens.tolist()):
        total = int(subsampled_length(n, static.meta["subsampling"]))
        assert int(enc_lens[b]) == total
        plan = plan_windows(total, window, static.context)
        assert len(plan) > 2
        for start, end, keep_start, keep_end in plan:  # the dynamic encoder on exactly the window's frames
            first = start * rate
            count = min(n - first, (end - start - 1) * rate + receptive)
            ref, ref_lens = dynamic.encode(feats[b : b + 1, first : first + count], torch.tensor([count]))
            assert int(ref_lens[0]) == end - start
            np.testing.assert_allclose(enc_out[b, keep_start:keep_end], ref[0, keep_start - start : keep_end - start],
                                       atol=1e-4, rtol=1e-4)
    log_probs = static.ctc_log_probs(enc_out)  # longer than one CTC call: cut frame-wise
    np.testing.assert_allclose(log_probs, dynamic.ctc_log_probs(enc_out), atol=1e-4, rtol=1e-4)


def test_decoder_refuses_what_the_profile_cannot_hold(backends):
    _, static = backends
    p = static.profile
    with pytest.raises(ValueError, match="encoder frames exceed"):
        static.decoder_scores(torch.zeros(1, p["enc_frames"] + 1, 64), torch.tensor([p["enc_frames"] + 1]),
                              torch.ones(1, 2, dtype=torch.long), torch.tensor([2]))
    with pytest.raises(ValueError, match="token hypothesis exceeds"):
        static.decoder_scores(torch.zeros(1, 5, 64), torch.tensor([5]),
                              torch.ones(1, p["max_tokens"] + 1, dtype=torch.long), torch.tensor([p["max_tokens"] + 1]))


def test_build_script_runs_the_exact_atc_commands(random_static, tmp_path):
    script = write_atc_script(random_static, soc_version="Ascend310P3", precision_mode="force_fp32")
    env = {k: v for k, v in os.environ.items() if k != "PATH"}
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env={**env, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 127 and "atc" in r.stderr and "not on PATH" in r.stderr

    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "atc.log"
    (fake / "atc").write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> {log}\n')
    (fake / "atc").chmod(0o755)
    r = subprocess.run(["bash", str(script), "Ascend910B3"], capture_output=True, text=True,
                       env={**env, "PATH": f"{fake}:/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    files = profile_files(random_static)
    expected = [" ".join(atc_command(path, "Ascend910B3", "force_fp32")[1:]) for path in files]
    gears = onnx_profile(random_static)["token_gears"]
    assert calls == expected and len(files) == len(PARTS) + len(gears) - 1 and len(gears) > 1
    for path, call in zip(files, calls):
        model = onnx.load(str(path))
        shapes = ";".join(f"{i.name}:" + ",".join(str(d.dim_value) for d in i.type.tensor_type.shape.dim)
                          for i in model.graph.input)
        assert f"--input_shape={shapes}" in call.split() and "--framework=5" in call.split()
        assert np.all([d.dim_value > 0 for i in model.graph.input for d in i.type.tensor_type.shape.dim])


def test_profile_has_int32_lengths_finite_masks_and_a_precision_list(random_static):
    for spec in PARTS.values():
        model = onnx.load(str(random_static / spec.file))
        types = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]}
        assert TensorProto.INT64 not in types.values()
        assert all(types[name] == TensorProto.INT32 for name in types if name.endswith("lens") or name == "hyps")
        assert not any(n.op_type in ("Squeeze", "Unsqueeze", "Gemm") for n in model.graph.node)
        for init in model.graph.initializer:
            if init.data_type == TensorProto.FLOAT:
                assert np.isfinite(numpy_helper.to_array(init)).all(), init.name
    write_atc_script(random_static)
    kept = (random_static / KEEP_DTYPE_NAME).read_text().split()
    names = {n.name: n.op_type for spec in PARTS.values() for n in onnx.load(str(random_static / spec.file)).graph.node}
    assert {names[k] for k in kept} == {"Softmax", "LogSoftmax", "ReduceSum", "ReduceMean", "Pow", "Sqrt"}


def test_check_script_finds_nothing_outside_canns_onnx_support(random_static):
    r = subprocess.run([sys.executable, str(ROOT / "tools/check_ascend_profile.py"), str(random_static)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout and " 0 unsupported" in r.stdout


def test_check_finds_undocumented_ops_dtypes_and_infinities(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.INT64, [2, 3])
    lens = helper.make_tensor_value_info("lens", TensorProto.INT64, [2, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1, 3])
    inits = [helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
             helper.make_tensor("neg", TensorProto.FLOAT, [], [float("-inf")]),
             helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])]
    nodes = [helper.make_node("Greater", ["x", "lens"], ["mask"], name="greater"),  # int64 compare
             helper.make_node("Where", ["mask", "neg", "zero"], ["scores"], name="where"),  # -inf constant
             helper.make_node("Unsqueeze", ["scores", "axes"], ["y"], name="unsqueeze")]  # opset 15 Unsqueeze
    graph = helper.make_graph(nodes, "g", [x, lens], [y], initializer=inits)
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), path)
    problems, _ = profile_problems(path)
    text = "\n".join(problems)
    assert "'greater' (Greater): input 0 ('x') is INT64" in text
    assert "'neg': non-finite" in text
    assert "'unsqueeze' (Unsqueeze): opset 15 outside the documented 8-12" in text
    assert "input 'x' is INT64" in text


def test_decoder_scores_at_the_shortest_gear_that_holds_the_hypotheses(backends):
    dynamic, static = backends
    gears = static.profile["token_gears"]
    assert gears[0] == 16 and gears[-1] == static.profile["max_tokens"] > 16
    g = torch.Generator().manual_seed(2)
    used = []
    for name, model in static.models.items():
        if name.startswith("decoder"):
            model.run = (lambda run, name: lambda inputs: used.append((name, inputs[2].shape[1])) or run(inputs))(
                model.run, name)
    enc_out, enc_lens = dynamic.encode(torch.randn(2, 150, 80, generator=g), torch.tensor([150, 120]))
    for longest, gear in ((5, 16), (16, 16), (17, gears[1]), (gears[-1], gears[-1])):
        used.clear()
        n = static.profile["num_hyps"]
        hyps = torch.randint(1, int(static.meta["vocab_size"]) - 1, (n, longest + 3), generator=g)
        hyps_lens = torch.randint(0, longest + 1, (n,), generator=g)
        hyps_lens[0] = longest
        rows = torch.arange(n) % 2
        args = (enc_out[rows], enc_lens[rows], hyps, hyps_lens)
        torch.testing.assert_close(static.decoder_scores(*args), dynamic.decoder_scores(*args), atol=1e-4, rtol=1e-4)
        assert [shape for _, shape in used] == [gear]
