"""The streaming model's per-stream state without a server: interleaved streams decode as Recognizer.stream() does,
bad pieces are refused alone, an idle stream is dropped, and the repository's config parses."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.inference.open_model import open_recognizer
from asr.inference.streaming import EndpointRule
from asr.serve.streaming import CONTROLS, MODEL_NAME, OUTPUTS, StreamingConfig, StreamingModel, write_repository

ROOT = Path(__file__).resolve().parents[2]
# a random model rarely says blank for long: segments of at most 3 s make the joined recordings close several
ENDPOINT = EndpointRule(trailing_silence=0.5, max_segment=3.0)


def request(corrid: int, wav: np.ndarray, start: bool = False, end: bool = False, rate: int = 16000) -> dict:
    """The tensors Triton hands the model for one request of a sequence (batch dimension 1)."""
    flag = lambda on: np.array([[int(on)]], np.int32)  # noqa: E731
    return {"wav": np.asarray(wav, np.float32).reshape(1, -1), "sample_rate": np.array([[rate]], np.int32),
            "START": flag(start), "END": flag(end), "READY": flag(True), "CORRID": np.array([[corrid]], np.uint64)}


def decoded(response: dict) -> dict:
    return {"partial": response["partial"][0, 0].decode(), "segments": json.loads(response["segments"][0, 0].decode()),
            "final": bool(response["final"][0, 0]), "error": response["error"][0, 0].decode()}


def random_pieces(x: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """``x`` cut into pieces of 0.1 to 0.7 s."""
    cuts = np.cumsum(rng.integers(1600, 11200, size=len(x) // 1600 + 1))
    return np.split(x, cuts[cuts < len(x)])


def offline(recognizer, x: np.ndarray) -> dict:
    """Recognizer.stream() on ``x`` in 0.1-s blocks, as ``asr-transcribe --streaming`` feeds it."""
    stream = recognizer.stream(rescore=True, endpoint=ENDPOINT)
    for i in range(0, len(x), 1600):
        stream.accept_waveform(x[i : i + 1600])
    return {"text": stream.finalize(), "segments": [{"start": s.start, "end": s.end, "text": s.text}
                                                    for s in stream.segments]}


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def recognizer(streaming_onnx):
    return open_recognizer(str(streaming_onnx), "onnxruntime", threads=1)


@pytest.fixture(scope="module")
def audio(recordings) -> list[np.ndarray]:
    """Two single utterances and two joined recordings (pauses between utterances)."""
    return [sf.read(recordings[i], dtype="float32")[0] for i in (0, 5, 16, 17)]


def make_model(recognizer, clock=None, lines=None, **settings) -> StreamingModel:
    config = StreamingConfig(model="unused", endpoint_silence=ENDPOINT.trailing_silence,
                             max_segment=ENDPOINT.max_segment, **settings)
    return StreamingModel(recognizer, config, clock=clock or Clock(),
                          log=(lines.append if lines is not None else lambda line: None))


def test_interleaved_streams_in_random_pieces_decode_as_recognizer_stream(recognizer, audio):
    model, rng = make_model(recognizer), np.random.default_rng(1)
    queues = {100 + i: random_pieces(x, rng) for i, x in enumerate(audio)}
    requests = []
    sent = {corrid: 0 for corrid in queues}
    while any(sent[c] < len(q) for c, q in queues.items()):  # the streams' pieces interleaved at random
        corrid = int(rng.choice([c for c, q in queues.items() if sent[c] < len(q)]))
        k = sent[corrid]
        requests.append(request(corrid, queues[corrid][k], start=k == 0, end=k == len(queues[corrid]) - 1))
        sent[corrid] += 1
    got = {c: {"partials": [], "segments": [], "final": None} for c in queues}
    while requests:  # executions of 1 to 4 requests, as the sequence batcher forms them
        n = int(rng.integers(1, 5))
        batch, requests = requests[:n], requests[n:]
        for r, out in zip(batch, model(batch)):
            assert {t.name for t in OUTPUTS} == set(out) and all(v.shape == (1, 1) for v in out.values())
            d, corrid = decoded(out), int(r["CORRID"][0, 0])
            assert d["error"] == "" and got[corrid]["final"] is None
            got[corrid]["segments"] += d["segments"]
            got[corrid]["partials"].append(d["partial"])
            if d["final"]:
                got[corrid]["final"] = d["partial"]
    assert model.streams == {}  # every stream ended and was freed
    assert max(model.batch_sizes) > 1
    for (corrid, g), x in zip(got.items(), audio):
        want = offline(recognizer, x)
        assert g["final"] == want["text"] and g["segments"] == want["segments"]
        assert want["text"]  # a random model says plenty: not vacuously equal
    assert max(len(g["segments"]) for g in got.values()) >= 2  # endpoints inside a stream, sent as they closed


def test_bad_pieces_are_refused_alone_and_the_stream_goes_on(recognizer, audio):
    model = make_model(recognizer, max_chunk_seconds=2.0)
    x, y = audio[0], audio[1]
    half = len(x) // 2
    batch = [request(1, x[:half], start=True), request(2, y[:8000], start=True), request(3, y, start=False)]
    errors = [decoded(o)["error"] for o in model(batch)]
    assert errors[:2] == ["", ""] and "sequence 3: no such stream" in errors[2]
    outs = [decoded(o) for o in model([request(1, x[half:][::2], rate=8000), request(2, y[8000:16000]),
                                        request(1, np.full(1600, np.nan)), request(1, np.zeros(3 * 16000)),
                                        request(9, x[:1600])])]
    assert "8000 Hz" in outs[0]["error"] and outs[0]["partial"] == "" and not outs[0]["final"]
    assert outs[1]["error"] == ""
    assert "NaN" in outs[2]["error"] and "longer than this server takes (2 s)" in outs[3]["error"]
    assert "sequence 9: no such stream" in outs[4]["error"]
    rest = [y[i : i + 16000] for i in range(16000, len(y), 16000)]  # pieces under the 2-s bound
    for piece in rest[:-1]:
        assert decoded(model([request(2, piece)])[0])["error"] == ""
    final = [decoded(o) for o in model([request(1, x[half:], end=True), request(2, rest[-1], end=True)])]
    assert final[0]["final"] and final[0]["partial"] == offline(recognizer, x)["text"]
    assert final[1]["final"] and final[1]["partial"] == offline(recognizer, y)["text"]
    assert model.streams == {}
    # a bad piece with the end flag: refused, and the stream ends (Triton ends the sequence)
    model([request(4, x[:half], start=True)])
    out = decoded(model([request(4, np.full(10, np.nan), end=True)])[0])
    assert "NaN" in out["error"] and "the stream is ended" in out["error"] and out["final"] and model.streams == {}


def test_a_stream_without_its_end_flag_is_dropped_when_idle_and_others_carry_on(recognizer, audio):
    clock, lines = Clock(), []
    model = make_model(recognizer, clock, lines, idle_timeout_s=5.0)
    x, y = audio[0], audio[1]
    model([request(7, x[:16000], start=True), request(8, y[:16000], start=True)])
    clock.now += 3
    assert decoded(model([request(8, y[16000:32000])])[0])["error"] == ""
    clock.now += 2.5  # 7 has been silent 5.5 s, 8 only 2.5 s
    assert decoded(model([request(8, y[32000:48000])])[0])["error"] == ""
    assert set(model.streams) == {8}
    assert lines == [f"{MODEL_NAME}: sequence 7 dropped after 5.5 s without a request (idle timeout 5 s, no end flag)"]
    assert "sequence 7: no such stream" in decoded(model([request(7, x[16000:])])[0])["error"]
    out = decoded(model([request(8, y[48000:], end=True)])[0])
    assert out["final"] and out["partial"] == offline(recognizer, y)["text"]
    # a stream seen in the same execution is not dropped, however long it waited in the queue
    model([request(5, x[:1600], start=True)])
    clock.now += 60
    assert decoded(model([request(5, x[1600:3200])])[0])["error"] == "" and set(model.streams) == {5}


def test_repository_config_parses_as_a_sequence_batched_model(streaming_onnx, serve_python, tmp_path):
    config = StreamingConfig(model=str(streaming_onnx), idle_timeout_s=2.5, max_batch=8, max_queue_delay_ms=3,
                             max_sequences=64)
    repo = write_repository(config, tmp_path / "repo")
    assert (repo / MODEL_NAME / "1" / "exported" / "encoder_chunk.onnx").is_file()
    with pytest.raises(FileExistsError):
        write_repository(config, tmp_path / "repo")
    with pytest.raises(ValueError, match="no encoder_chunk.onnx"):
        write_repository(StreamingConfig(model=str(tmp_path)), tmp_path / "repo2")
    r = subprocess.run([str(serve_python), "tests/serve/parse_configs.py", str(repo)], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    parsed = json.loads(r.stdout)[MODEL_NAME]
    seq = parsed["sequence_batching"]
    assert seq["max_sequence_idle_microseconds"] == "2500000"
    # (MessageToDict leaves out an enum's first value, CONTROL_SEQUENCE_START)
    assert {c["name"]: c["control"][0].get("kind", "CONTROL_SEQUENCE_START") for c in seq["control_input"]} == {
        name: kind for name, (kind, _) in CONTROLS.items()}
    assert seq["oldest"] == {"max_candidate_sequences": 64, "preferred_batch_size": [8],
                             "max_queue_delay_microseconds": "3000"}
    assert parsed["max_batch_size"] == 8 and [t["name"] for t in parsed["output"]] == [t.name for t in OUTPUTS]
    assert [t.get("allow_ragged_batch", False) for t in parsed["input"]] == [True, False]


def test_serve_streaming_refuses_a_folder_without_a_chunk_graph_or_bad_settings_in_one_line(served_onnx, capsys):
    from asr.serve.server import main as serve_main  # noqa: PLC0415

    assert serve_main(["--streaming", "--model", str(served_onnx)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"asr.serve: cannot load the model: {served_onnx}: no encoder_chunk.onnx; export the model with "
                   "`python -m asr.export --streaming-chunk 16` for streaming")
    assert serve_main(["--streaming", "--model", str(served_onnx), "--mode", "ctc_prefix_beam_search",
                       "--idle-timeout", "0"]) == 2
    assert capsys.readouterr().err.strip() == "asr.serve: streaming serve config: idle_timeout_s must be positive, got 0.0"
