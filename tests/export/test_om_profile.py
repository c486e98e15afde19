"""The static (Ascend) profile: graph check, ATC script, and padding/windowing against the dynamic export."""
from __future__ import annotations

import os
import subprocess

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from asr.inference.backends.om_backend import OMBackend, plan_windows
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from asr.model.subsampling import subsampled_length
from asr.export.om import atc_command, static_graph_problems, write_atc_script
from asr.export.format import PARTS


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
    expected = [" ".join(atc_command(random_static / s.file, "Ascend910B3", "force_fp32")[1:]) for s in PARTS.values()]
    assert calls == expected
    for spec, call in zip(PARTS.values(), calls):
        model = onnx.load(str(random_static / spec.file))
        shapes = ";".join(f"{i.name}:" + ",".join(str(d.dim_value) for d in i.type.tensor_type.shape.dim)
                          for i in model.graph.input)
        assert f"--input_shape={shapes}" in call.split() and "--framework=5" in call.split()
        assert np.all([d.dim_value > 0 for i in model.graph.input for d in i.type.tensor_type.shape.dim])
