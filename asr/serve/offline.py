"""The offline Triton model ``asr_offline``: a whole recording in, its text and segment times out.

One request is one recording (16 kHz mono float samples). Triton's dynamic batcher gathers requests of any lengths
(the audio input is a ragged input) and the model recognises them together (:mod:`asr.serve.recordings`):

    inputs   wav          FP32  [-1]  samples in [-1, 1]
             sample_rate  INT32 [1]   what the client has; the server does not resample
    outputs  text         BYTES [1]   UTF-8, the segments' texts joined as asr-transcribe joins them
             segments     BYTES [1]   JSON: [{"start": s, "end": s, "text": ...}, ...] (seconds; as asr-transcribe --json)
             error        BYTES [1]   empty, or why this request was not recognised (its text is then empty)

A bad request (empty, another sample rate, longer than ``max_seconds``, non-finite samples) is answered in its
``error`` output while the other requests of its batch are recognised: PyTriton 0.7 can fail a whole batch but not
one request of it. Triton itself refuses, per request, a request whose tensors have the wrong name, type or rank.
"""
from __future__ import annotations

import json
import sys
import threading
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from asr.inference.long_audio import Transcript
from asr.inference.recognizer import Recognizer
from asr.serve.config import ServeConfig
from asr.serve.recordings import check_recording, transcribe_recordings

MODEL_NAME = "asr_offline"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a Triton model; ``shape`` is per request (the batch dimension is Triton's)."""

    name: str
    dtype: type
    shape: tuple[int, ...]


INPUTS = (TensorSpec("wav", np.float32, (-1,)), TensorSpec("sample_rate", np.int32, (1,)))
OUTPUTS = (TensorSpec("text", np.bytes_, (1,)), TensorSpec("segments", np.bytes_, (1,)),
           TensorSpec("error", np.bytes_, (1,)))
RAGGED_INPUTS = ("wav",)


def response(transcript: Transcript | None = None, error: str = "") -> dict[str, np.ndarray]:
    """The output tensors of one request, each with Triton's batch dimension of 1.

    Text is UTF-8 in NumPy ``bytes_`` arrays (UTF-8 text holds no NUL, which ``bytes_`` would drop). Every tensor
    has one item: PyTriton 0.7 cannot send a zero-size tensor (its shared-memory store fails, and with it the whole
    batch), so the segments, of which there may be none, travel as one JSON document.
    """
    segments = transcript.segments if transcript is not None else []
    rows = [{"start": s.start, "end": s.end, "text": s.text} for s in segments]
    return {
        "text": np.array([[(transcript.text if transcript is not None else "").encode()]], dtype=np.bytes_),
        "segments": np.array([[json.dumps(rows, ensure_ascii=False).encode()]], dtype=np.bytes_),
        "error": np.array([[error.encode()]], dtype=np.bytes_),
    }


class OfflineModel:
    """The inference callable of ``asr_offline`` (one per model instance).

    Args:
        recognizer: decodes waveforms (its backend's sessions may be shared with other instances).
        config: the server's settings (mode, segment batch, longest request).

    Attributes:
        batch_sizes: requests per execution -> how many executions had that many (all instances of this object).
    """

    name = MODEL_NAME
    inputs, outputs, ragged_inputs = INPUTS, OUTPUTS, RAGGED_INPUTS

    def __init__(self, recognizer: Recognizer, config: ServeConfig):
        recognizer.check_modes([config.mode])
        self.recognizer, self.config = recognizer, config
        self.batch_sizes: Counter[int] = Counter()
        self._lock = threading.Lock()

    def __call__(self, requests: list[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Recognise one batch.

        Args:
            requests: per request ``wav`` (1, N) float32 and ``sample_rate`` (1, 1) int32.

        Returns:
            Per request the tensors of :data:`OUTPUTS`, each of batch size 1.
        """
        with self._lock:
            self.batch_sizes[len(requests)] += 1
        rate = self.recognizer.pipeline.fbank.sample_rate
        wavs, errors = [], []
        for request in requests:
            wav = np.asarray(request["wav"], dtype=np.float32).reshape(-1)  # (N,)
            sample_rate = int(np.asarray(request["sample_rate"]).reshape(-1)[0])
            wavs.append(wav)
            errors.append(check_recording(wav, sample_rate, rate, self.config.max_seconds))
        good = [i for i, e in enumerate(errors) if e is None]
        outcomes = dict(zip(good, self._transcribe([wavs[i] for i in good])))
        return [response(error=errors[i]) if errors[i] is not None
                else response(error=outcomes[i]) if isinstance(outcomes[i], str) else response(outcomes[i])
                for i in range(len(requests))]

    def _transcribe(self, wavs: list[np.ndarray]) -> list[Transcript | str]:
        """Transcripts of checked recordings, decoded together; if that fails, one by one, so that a recording
        the decoder cannot take fails alone (its outcome is then the error message)."""
        try:
            return transcribe_recordings(self.recognizer, wavs, self.config.mode, batch_size=self.config.decode_batch)
        except Exception:  # noqa: BLE001 (whatever broke, the other requests of the batch must still be answered)
            traceback.print_exc(file=sys.stderr)
        outcomes: list[Transcript | str] = []
        for wav in wavs:
            try:
                outcomes.append(transcribe_recordings(self.recognizer, [wav], self.config.mode)[0])
            except Exception as e:  # noqa: BLE001
                outcomes.append(f"recognition failed: {type(e).__name__}: {e}")
        return outcomes
