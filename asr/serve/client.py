"""Calling ``asr_offline`` with ``tritonclient`` (gRPC): a recording in, a :class:`Transcript` out.

    from asr.serve.client import OfflineClient
    with OfflineClient("127.0.0.1:8001") as client:
        transcript = client.transcribe(samples, 16000)     # samples: (N,) float32 in [-1, 1]
        print(transcript.text, [(s.start, s.end, s.text) for s in transcript.segments])

A request the server refuses raises :class:`RequestError` with the server's reason, whether Triton refused it or
the model answered it in its ``error`` output.
"""
from __future__ import annotations

import json

import numpy as np

from asr.inference.long_audio import Segment, Transcript
from asr.serve.offline import MODEL_NAME


class RequestError(RuntimeError):
    """The server did not recognise this request; the message says why."""


class OfflineClient:
    """One gRPC connection to a server.

    Args:
        url: ``host:port`` of the gRPC endpoint.
        model: the Triton model name.
        timeout_s: give up on a request after this many seconds (None: wait).
    """

    def __init__(self, url: str = "127.0.0.1:8001", model: str = MODEL_NAME, timeout_s: float | None = None):
        import tritonclient.grpc as grpcclient  # noqa: PLC0415 (only the serving environment has it)

        self._grpc = grpcclient
        self.client = grpcclient.InferenceServerClient(url)
        self.model, self.timeout_s = model, timeout_s

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> Transcript:
        """Recognise one recording.

        Args:
            wav: (N,) float samples.
            sample_rate: their rate (the model's is required).

        Raises:
            RequestError: the server refused the request or could not recognise it.
        """
        wav = np.ascontiguousarray(wav, dtype=np.float32).reshape(1, -1)  # (1, N): a batch of one
        inputs = [self._grpc.InferInput("wav", list(wav.shape), "FP32"),
                  self._grpc.InferInput("sample_rate", [1, 1], "INT32")]
        inputs[0].set_data_from_numpy(wav)
        inputs[1].set_data_from_numpy(np.array([[sample_rate]], dtype=np.int32))
        try:
            result = self.client.infer(self.model, inputs, client_timeout=self.timeout_s)
        except self._grpc.InferenceServerException as e:
            raise RequestError(e.message() or str(e)) from None
        error = result.as_numpy("error").reshape(-1)[0].decode()
        if error:
            raise RequestError(error)
        rows = json.loads(result.as_numpy("segments").reshape(-1)[0].decode())
        return Transcript([Segment(row["start"], row["end"], row["text"]) for row in rows])

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> OfflineClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
