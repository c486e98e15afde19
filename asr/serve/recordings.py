"""Many recordings in memory, decoded together: what ``asr-transcribe`` does to one file, for a server's batch.

Each request's samples are read through :class:`asr.data.audio.ArrayAudio` and cut by the code that cuts
``asr-transcribe``'s files (:func:`asr.inference.long_audio.transcribe_recordings`: the same bound from the model's
training lengths, the same energy VAD and segmenter, a recording no longer than the bound decoded whole); the
pieces of *all* recordings of the batch are then sorted by length and decoded ``batch_size`` at a time, so one
encoder call serves several requests. A piece's text is the one ``asr-transcribe`` gives it, up to the rounding of
a differently padded batch (the encoder masks the padding).
"""
from __future__ import annotations

import numpy as np

from asr.data.audio import ArrayAudio
from asr.inference.long_audio import Transcript, transcribe_recordings as transcribe_audio
from asr.inference.recognizer import Recognizer


def check_recording(wav: np.ndarray, sample_rate: int, model_rate: int, max_seconds: float) -> str | None:
    """Why a request's audio cannot be recognised, or None when it can.

    Args:
        wav: (N,) float samples.
        sample_rate: the rate the client says they have.
        model_rate: the model's rate (the server does not resample).
        max_seconds: the longest recording accepted.
    """
    if wav.ndim != 1:
        return f"audio must be one channel of samples, got shape {list(wav.shape)}"
    if wav.size == 0:
        return "empty audio (0 samples)"
    if sample_rate != model_rate:
        return f"sample rate {sample_rate} Hz, the model needs {model_rate} Hz (resample before sending)"
    if wav.size > max_seconds * model_rate:
        return (f"{wav.size / model_rate:.1f} s of audio is longer than this server takes ({max_seconds:g} s): "
                "split it, or transcribe it with asr-transcribe")
    if not np.isfinite(wav).all():
        return "audio holds NaN or infinite samples"
    return None


def transcribe_recordings(recognizer: Recognizer, wavs: list[np.ndarray], mode: str = "attention_rescoring",
                          batch_size: int = 16) -> list[Transcript]:
    """Recognise several recordings as ``asr-transcribe`` (default settings) recognises files, decoding their
    pieces together.

    Args:
        recognizer: decodes lists of waveforms; its ``training_lengths`` give the bound on a piece.
        wavs: (N_i,) float32 samples at the model's rate, each checked by :func:`check_recording`.
        mode: a decoding mode of the recognizer.
        batch_size: most pieces per decoding call.

    Returns:
        One transcript per recording: its segments with text and times as ``asr-transcribe --json`` gives them;
        a recording without speech has none and the note "no speech found".
    """
    rate = recognizer.pipeline.fbank.sample_rate
    recordings = [ArrayAudio(wav, rate, f"request {i}") for i, wav in enumerate(wavs)]
    return transcribe_audio(recognizer, recordings, mode=mode, batch_size=batch_size)
