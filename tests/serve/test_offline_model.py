"""The offline model's inference callable: one batch with bad requests answers each bad one alone."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from asr.inference.open_model import open_recognizer
from asr.serve.config import ServeConfig
from asr.serve import offline
from asr.serve.offline import OUTPUTS, OfflineModel


def request(wav: np.ndarray, rate: int = 16000) -> dict[str, np.ndarray]:
    """The tensors Triton hands the callable for one request (batch dimension 1)."""
    return {"wav": np.asarray(wav, np.float32).reshape(1, -1), "sample_rate": np.array([[rate]], np.int32)}


def decoded(response: dict) -> tuple[str, list, str]:
    segments = json.loads(response["segments"][0, 0].decode())
    return response["text"][0, 0].decode(), segments, response["error"][0, 0].decode()


@pytest.fixture(scope="module")
def model(served_onnx):
    config = ServeConfig(model=str(served_onnx), mode="ctc_greedy_search", max_seconds=30.0, decode_batch=4)
    return OfflineModel(open_recognizer(str(served_onnx), threads=1), config)


def test_bad_requests_answered_alone_and_good_ones_as_if_alone(model, recordings):
    good = [sf.read(path, dtype="float32")[0] for path in recordings[17:20]]  # the last is silence
    bad = {"empty": request(np.zeros(0)), "8k": request(good[0][::2], 8000),
           "long": request(np.zeros(31 * 16000)), "nan": request(np.full(1600, np.nan))}
    batch = [request(good[0]), bad["empty"], request(good[1]), bad["8k"], bad["long"], request(good[2]), bad["nan"]]
    responses = model(batch)
    assert len(responses) == len(batch)
    for response in responses:  # one item per tensor: PyTriton cannot send zero-size ones
        assert {t.name for t in OUTPUTS} == set(response) and all(v.shape == (1, 1) for v in response.values())
    alone = [decoded(model([request(x)])[0]) for x in good]
    assert [decoded(responses[i]) for i in (0, 2, 5)] == alone
    assert all(not error for _, _, error in alone) and alone[0][0] and alone[2] == ("", [], "")
    for i, message in [(1, "empty audio"), (3, "sample rate 8000 Hz"), (4, "longer than this server takes"),
                       (6, "NaN")]:
        text, segments, error = decoded(responses[i])
        assert message in error and text == "" and segments == []
    assert model.batch_sizes[len(batch)] == 1


def test_a_recording_the_decoder_fails_on_fails_alone(model, recordings, monkeypatch):
    wavs = [sf.read(path, dtype="float32")[0] for path in recordings[:3]]
    real = offline.transcribe_recordings

    def fails_on_the_second(recognizer, batch, *args, **kwargs):
        if any(len(w) == len(wavs[1]) and np.array_equal(w, wavs[1]) for w in batch):
            raise RuntimeError("broken input")
        return real(recognizer, batch, *args, **kwargs)

    monkeypatch.setattr(offline, "transcribe_recordings", fails_on_the_second)
    responses = [decoded(r) for r in model([request(x) for x in wavs])]
    assert responses[1] == ("", [], "recognition failed: RuntimeError: broken input")
    assert [responses[0], responses[2]] == [decoded(model([request(x)])[0]) for x in (wavs[0], wavs[2])]
    assert responses[0][0] and not responses[0][2]
