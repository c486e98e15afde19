"""``python -m asr.export``: the whole folder layout, its report, and the parity gate."""
from __future__ import annotations

import json

from asr.inference.backends.om_backend import OMBackend
from asr.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
from asr.export.__main__ import main


def test_export_writes_every_variant_and_its_report(random_model_file, tmp_path, capsys):
    out = tmp_path / "onnx"
    assert main(["--model", str(random_model_file), "--out", str(out), "--quantize", "int8", "mixed",
                 "--om-profile", "--om-frames", "301"]) == 0
    report = json.loads((out / "export_report.json").read_text())
    assert all(d <= report["tolerance"] for d in report["fp32"]["parity_max_abs_diff"].values())
    assert report["om"]["static_vs_dynamic"]["log_prob_max_diff"] <= report["tolerance"]
    assert report["int8"]["size_bytes"] < report["mixed"]["size_bytes"] < report["fp32"]["size_bytes"]
    for folder in (out, out / "int8", out / "mixed"):
        OnnxRuntimeBackend(folder, num_threads=1)
    with OMBackend(out / "om", runtime="onnxruntime", num_threads=1) as static:
        assert static.profile["frames"] == 301
    assert (out / "om" / "build_om.sh").is_file()
    assert "build the OM files with" in capsys.readouterr().out


def test_parity_gate_fails_above_the_tolerance(random_model_file, tmp_path, capsys):
    out = tmp_path / "onnx"
    rc = main(["--model", str(random_model_file), "--out", str(out), "--tolerance", "0"])
    worst = max(json.loads((out / "export_report.json").read_text())["fp32"]["parity_max_abs_diff"].values())
    assert rc == (1 if worst > 0 else 0)
    if worst > 0:
        assert "parity FAILED" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "missing.safetensors"), "--out", str(out)]) == 1
