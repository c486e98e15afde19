"""Settings and refusals that need no running server: bad settings, a missing model, a non-loopback load test."""
from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from asr.serve.config import ServeConfig, free_ports, is_loopback
from asr.serve.server import main as serve_main

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import load_test  # noqa: E402


@pytest.mark.parametrize("change, message", [({"max_batch": 0}, "max_batch must be at least 1"),
                                             ({"max_queue_delay_ms": -1}, "must not be negative"),
                                             ({"threads": 0}, "threads must be at least 1"),
                                             ({"max_seconds": 0}, "max_seconds must be positive"),
                                             ({"provider": "npu"}, "provider 'npu'")])
def test_bad_settings_are_refused_by_name(change, message):
    with pytest.raises(ValueError, match=message):
        ServeConfig(model="m", **change)


def test_loopback_and_free_ports():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.2", "::1", "localhost"]))
    assert not any(map(is_loopback, ["10.0.0.1", "192.168.1.2", "0.0.0.0", "example.org"]))
    ports = free_ports(3)
    assert len(set(ports)) == 3
    for port in ports:  # free now: each can be bound
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_server_refuses_a_missing_model_or_provider_in_one_line(served_onnx, tmp_path, capsys):
    assert serve_main(["--model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"asr.serve: cannot load the model: {tmp_path / 'missing'}: no such folder (export one with " \
                  "`python -m asr.export`)"
    assert serve_main(["--model", str(served_onnx), "--provider", "tensorrt"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TensorrtExecutionProvider" in err and "onnxruntime-gpu" in err


def test_load_test_refuses_addresses_off_this_machine(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    for url in ("10.1.2.3:8001", "192.168.0.5:8001", "example.org:8001"):
        assert load_test.main(["--manifest", str(manifest), "--url", url]) == 2
        assert "not a loopback address" in capsys.readouterr().err
    assert load_test.url_host("[::1]:8001") == "::1" and load_test.url_host("127.0.0.1:9") == "127.0.0.1"
