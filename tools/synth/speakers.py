"""Synthetic speakers (an eSpeak voice variant with sampled pitch, range, rate, volume) and how they speak."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from synth.espeak import engine

SAMPLE_RATE = 16000
NOISE_FLOOR_DBFS = -65.0  # faint background noise so that "silence" is not digital zero, as in a real room


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an eSpeak variant and its prosody parameters (eSpeak units)."""

    id: str
    variant: str
    pitch: int
    pitch_range: int
    rate: int
    volume: int


def sample_speaker(speaker_id: str, rng: np.random.Generator, variants: list[str] | None = None) -> Speaker:
    """Draw a speaker: a random ``m*``/``f*`` variant (of ``variants``, default all), pitch 25-75, range 30-85,
    rate 145-205 wpm, volume 35-70."""
    variants = variants or engine().variants()
    return Speaker(speaker_id, variants[rng.integers(len(variants))], int(rng.integers(25, 76)),
                   int(rng.integers(30, 86)), int(rng.integers(145, 206)), int(rng.integers(35, 71)))


def speak(pinyin_text: str, speaker: Speaker, rng: np.random.Generator,
          pad: tuple[float, float] = (0.1, 0.3)) -> np.ndarray:
    """Read tone-numbered pinyin as ``speaker``, at 16 kHz, with leading/trailing silence over a faint noise floor.

    The speaking rate varies by up to 7% between utterances; the leading and trailing silences are each drawn
    uniformly from ``pad`` seconds. Nothing of eSpeak's output is trimmed.

    Returns:
        audio: (T,) float32 in [-1, 1] at :data:`SAMPLE_RATE`.
    """
    tts = engine()
    tts.set_voice(speaker.variant)
    tts.set_params(round(speaker.rate * rng.uniform(0.93, 1.07)), speaker.pitch, speaker.pitch_range, speaker.volume)
    samples = tts.synth(pinyin_text, seed=int(rng.integers(2**31)))
    raw = torch.from_numpy(samples.astype(np.float32) / 32768.0)  # (T_22k,)
    speech = _resampler(tts.sample_rate)(raw).numpy()  # (T,)
    lead, trail = (int(rng.uniform(*pad) * SAMPLE_RATE) for _ in range(2))
    audio = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(trail, np.float32)])
    audio += rng.normal(0.0, 10 ** (NOISE_FLOOR_DBFS / 20), audio.shape).astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


@functools.cache
def _resampler(orig_rate: int) -> torchaudio.transforms.Resample:
    """Band-limited resampling to 16 kHz; the transform keeps its sinc kernel between calls."""
    return torchaudio.transforms.Resample(orig_rate, SAMPLE_RATE)
