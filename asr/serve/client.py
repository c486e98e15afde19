"""Calling ``asr_offline`` with ``tritonclient`` (gRPC): a recording in, a :class:`Transcript` out.

    from asr.serve.client import OfflineClient
    with OfflineClient("127.0.0.1:8001") as client:
        transcript = client.transcribe(samples, 16000)     # samples: (N,) float32 in [-1, 1]
        print(transcript.text, [(s.start, s.end, s.text) for s in transcript.segments])

A request the server refuses raises :class:`RequestError` with the server's reason, whether Triton refused it or
the model answered it in its ``error`` output.

Streams (``asr_streaming``, ``python -m asr.serve --streaming``) go over one gRPC bidirectional stream, which
carries the pieces of any number of audio streams, each a Triton sequence:

    from asr.serve.client import StreamingClient
    with StreamingClient("127.0.0.1:8001") as client:
        client.send(7, piece, start=True)                  # sequence id 7: its first piece
        client.send(7, last_piece, end=True)               # ... its last
        answer = client.results.get()                      # a StreamAnswer per piece, in the order they come
"""
from __future__ import annotations

import json
import queue
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from asr.inference.long_audio import Segment, Transcript
from asr.serve.offline import MODEL_NAME
from asr.serve.streaming import MODEL_NAME as STREAMING_MODEL_NAME


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


@dataclass
class StreamAnswer:
    """The answer to one piece of a stream.

    Attributes:
        request_id: the id the piece was sent with (None when Triton refused a request without saying which).
        partial: the text so far; on the final answer, the final text.
        segments: the segments this piece closed.
        final: the answer to the piece with the end flag.
        error: empty, or why the piece was refused.
        received: ``time.monotonic()`` when it arrived.
    """

    request_id: str | None
    partial: str = ""
    segments: list[Segment] = field(default_factory=list)
    final: bool = False
    error: str = ""
    received: float = 0.0


class StreamingClient:
    """One gRPC connection with one bidirectional stream to ``asr_streaming``; answers go to :attr:`results`
    (a queue), or to ``on_answer`` when given (called on tritonclient's thread).

    Args:
        url: ``host:port`` of the gRPC endpoint.
        model: the Triton model name.
        on_answer: called with each :class:`StreamAnswer`.
    """

    def __init__(self, url: str = "127.0.0.1:8001", model: str = STREAMING_MODEL_NAME,
                 on_answer: Callable[[StreamAnswer], None] | None = None):
        import tritonclient.grpc as grpcclient  # noqa: PLC0415 (only the serving environment has it)

        self._grpc = grpcclient
        self.model = model
        self.results: queue.Queue[StreamAnswer] = queue.Queue()
        self.on_answer = on_answer or self.results.put
        self.client = grpcclient.InferenceServerClient(url)
        self.client.start_stream(callback=self._callback)
        self._sent = 0

    def send(self, sequence_id: int, samples: np.ndarray, sample_rate: int = 16000, start: bool = False,
             end: bool = False, request_id: str | None = None) -> str:
        """Send the next piece of stream ``sequence_id`` (returns at once). Returns the piece's request id."""
        wav = np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1)  # (1, N)
        inputs = [self._grpc.InferInput("wav", list(wav.shape), "FP32"),
                  self._grpc.InferInput("sample_rate", [1, 1], "INT32")]
        inputs[0].set_data_from_numpy(wav)
        inputs[1].set_data_from_numpy(np.array([[sample_rate]], dtype=np.int32))
        if request_id is None:
            self._sent += 1
            request_id = f"{sequence_id}:{self._sent}"
        self.client.async_stream_infer(self.model, inputs, request_id=request_id, sequence_id=sequence_id,
                                       sequence_start=start, sequence_end=end)
        return request_id

    def _callback(self, result, error) -> None:
        now = time.monotonic()
        if error is not None:
            self.on_answer(StreamAnswer(None, error=error.message() or str(error), received=now))
            return
        value = lambda name: result.as_numpy(name).reshape(-1)[0]  # noqa: E731
        rows = json.loads(value("segments").decode())
        self.on_answer(StreamAnswer(result.get_response().id, value("partial").decode(),
                                    [Segment(r["start"], r["end"], r["text"]) for r in rows], bool(value("final")),
                                    value("error").decode(), now))

    def close(self) -> None:
        self.client.stop_stream()
        self.client.close()

    def __enter__(self) -> StreamingClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
