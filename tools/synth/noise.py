"""Synthetic stand-ins for MUSAN-style noises and RIRS_NOISES-style room impulse responses, at 16 kHz."""
from __future__ import annotations

from typing import Callable

import numpy as np

from synth.speakers import SAMPLE_RATE

NOISE_KINDS = ("white", "pink", "brown", "babble", "music")
RMS_DBFS = -26.0  # every noise file is scaled to this RMS level


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as 1/f**exponent (0 white, 1 pink, 2 brown).

    Returns:
        noise: (n,) float64 at unit RMS.
    """
    spec = np.fft.rfft(rng.standard_normal(n))  # (n // 2 + 1,)
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    freqs[0] = freqs[1]  # no infinite gain at DC
    x = np.fft.irfft(spec / freqs ** (exponent / 2), n)
    x -= x.mean()
    return x / np.sqrt(np.mean(x**2))


def music_like(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (50 Hz and harmonics) under a random pentatonic melody of harmonic notes with decaying envelopes.

    Returns:
        music: (n,) float64 at unit RMS.
    """
    t = np.arange(n) / SAMPLE_RATE
    x = sum(0.3 / k * np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 6))
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)
    start = 0
    while start < n:
        length = int(rng.uniform(0.15, 0.6) * SAMPLE_RATE)
        tn = np.arange(min(length, n - start)) / SAMPLE_RATE
        f0 = scale[rng.integers(len(scale))]
        note = sum(0.5**k * np.sin(2 * np.pi * f0 * (k + 1) * tn) for k in range(4))
        x[start:start + len(tn)] += note * np.exp(-tn / rng.uniform(0.1, 0.4)) * (1 - np.exp(-tn / 0.005))
        start += length
    return x / np.sqrt(np.mean(x**2))


def babble(n: int, talk: Callable[[np.random.Generator], np.ndarray], rng: np.random.Generator,
           talkers: int = 6) -> np.ndarray:
    """Several talkers at once: each stream chains utterances from ``talk`` (a random sentence by a random voice).

    Returns:
        babble: (n,) float64 at unit RMS.
    """
    x = np.zeros(n)
    for _ in range(talkers):
        stream = [np.zeros(int(rng.uniform(0, 1.0) * SAMPLE_RATE))]
        while sum(map(len, stream)) < n:
            stream.append(talk(rng))
        x += np.concatenate(stream)[:n] * rng.uniform(0.5, 1.0)
    return x / np.sqrt(np.mean(x**2))


def make_noise(kind: str, seconds: float, rng: np.random.Generator,
               talk: Callable[[np.random.Generator], np.ndarray] | None = None) -> np.ndarray:
    """One noise clip of ``kind`` (see :data:`NOISE_KINDS`); ``babble`` needs ``talk``.

    Returns:
        noise: (T,) float32 at :data:`RMS_DBFS` RMS, clipped to [-1, 1].
    """
    n = int(seconds * SAMPLE_RATE)
    if kind in ("white", "pink", "brown"):
        x = coloured_noise(n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind], rng)
    elif kind == "music":
        x = music_like(n, rng)
    elif kind == "babble":
        x = babble(n, talk, rng)
    else:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")
    return np.clip(x * 10 ** (RMS_DBFS / 20), -1.0, 1.0).astype(np.float32)


def simulate_rir(rt60: float, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """A room impulse response: a direct-path peak, a few early reflections, then an exponentially decaying
    noise tail that falls by 60 dB in ``rt60`` seconds. Channels share the room (same decay) and differ in
    direct-path delay (up to 0.5 ms, as microphones a few cm apart) and in their tail noise.

    Returns:
        rir: (T, channels) float32, peak magnitude 0.9, T = 1.2 * rt60 seconds after the direct path.
    """
    delay = int(rng.uniform(0.002, 0.010) * SAMPLE_RATE)  # source 0.7-3.4 m away
    n = delay + int(SAMPLE_RATE * 0.0005 * channels) + int(1.2 * rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    reverb_gain = rng.uniform(0.05, 0.3)  # tail level relative to the direct path
    reflections = [(rng.uniform(0.001, 0.02), rng.uniform(0.2, 0.6) * rng.choice([-1, 1])) for _ in range(5)]
    rir = np.zeros((n, channels))
    for c in range(channels):
        d = delay + int(rng.uniform(0, 0.0005) * SAMPLE_RATE) * (c > 0)
        tail = reverb_gain * rng.standard_normal(n) * np.exp(-6.908 * (t - t[d]) / rt60) * (t > t[d] + 0.001)
        rir[:, c] = tail
        rir[d, c] += 1.0
        for lag, gain in reflections:
            rir[d + int(lag * SAMPLE_RATE), c] += gain
    return (0.9 * rir / np.abs(rir).max()).astype(np.float32)
