"""Many recordings in memory, decoded together: what ``asr-transcribe`` does to one file, for a server's batch.

Each recording is cut into speech segments by the same VAD and segment bound as ``asr-transcribe``
(:func:`asr.inference.long_audio.transcribe_file`); then the segments of *all* recordings are sorted by length and
decoded ``batch_size`` at a time, so one encoder call serves several requests. A segment's text is the one
``asr-transcribe`` gives it, up to the rounding of a differently padded batch (the encoder masks the padding).
"""
from __future__ import annotations

import numpy as np
import torch

from asr.inference.long_audio import Segment, Transcript, max_segment_seconds
from asr.inference.recognizer import Recognizer
from asr.inference.vad import EnergyVAD, frame_energies


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


def speech_spans(recognizer: Recognizer, wav: np.ndarray, vad: EnergyVAD) -> list[tuple[float, float]]:
    """(start, end) seconds of the speech segments of one recording, as ``asr-transcribe`` cuts a file.

    Args:
        wav: (N,) float32 samples at the model's rate.
    """
    vad = EnergyVAD(**{**vad.__dict__, "max_segment": max_segment_seconds(recognizer, vad.max_segment)})
    return vad.segments(frame_energies([wav], recognizer.pipeline.fbank.sample_rate))


def transcribe_recordings(recognizer: Recognizer, wavs: list[np.ndarray], mode: str = "attention_rescoring",
                          vad: EnergyVAD | None = None, batch_size: int = 16) -> list[Transcript]:
    """Recognise several recordings, decoding their segments together.

    Args:
        recognizer: decodes lists of waveforms (``Recognizer.transcribe``).
        wavs: (N_i,) float32 samples at the model's rate, each checked by :func:`check_recording`.
        mode: a decoding mode of the recognizer.
        vad: the segmenter (default ``EnergyVAD()``, as ``asr-transcribe``).
        batch_size: most segments per decoding call.

    Returns:
        One transcript per recording: its segments with text (times rounded to 10 ms, as ``asr-transcribe``);
        a recording without speech has none and the note "no speech found".
    """
    vad = vad or EnergyVAD()
    rate = recognizer.pipeline.fbank.sample_rate
    spans = [speech_spans(recognizer, wav, vad) for wav in wavs]
    pieces = [(r, k) for r, recording in enumerate(spans) for k in range(len(recording))]
    pieces.sort(key=lambda p: spans[p[0]][p[1]][1] - spans[p[0]][p[1]][0])  # similar lengths share a batch
    texts = [[""] * len(recording) for recording in spans]
    for first in range(0, len(pieces), batch_size):
        batch = pieces[first : first + batch_size]
        audio = []
        for r, k in batch:
            start, end = spans[r][k]
            samples = wavs[r][int(start * rate) : min(len(wavs[r]), int(end * rate))]
            audio.append(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).unsqueeze(0))  # (1, N)
        for (r, k), text in zip(batch, recognizer.transcribe(audio, mode)):
            texts[r][k] = text
    return [Transcript([Segment(round(s, 2), round(e, 2), t) for (s, e), t in zip(recording, recording_texts) if t],
                       [] if recording else ["no speech found"])
            for recording, recording_texts in zip(spans, texts)]
