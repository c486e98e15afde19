"""A minimal ctypes binding to eSpeak NG as shipped by the ``espeakng-loader`` pip package.

eSpeak keeps one global engine per process, so this module holds one too: call :func:`engine` to get it
(initialised on first use, in synchronous mode, collecting samples through a synth callback). Its output depends
on what it synthesised before since loading; call :meth:`Espeak.reset` to start a reproducible sequence.
"""
from __future__ import annotations

import ctypes
import _ctypes
import functools
import re
from pathlib import Path

import espeakng_loader
import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "pitch_range": 4}
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class Espeak:
    """The process's eSpeak NG engine for one language voice.

    Args:
        voice: eSpeak voice name, e.g. ``"cmn-latn-pinyin"`` (Mandarin read from tone-numbered pinyin).
    """

    def __init__(self, voice: str = "cmn-latn-pinyin"):
        self.voice = voice
        self.data_path = Path(espeakng_loader.get_data_path())
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # kept referenced: eSpeak calls it from C
        self._lib = None
        self.reset()

    def reset(self) -> None:
        """Reload the library from scratch and select the plain voice.

        eSpeak keeps synthesis state in C statics that no API call resets (e.g. the pitch-flutter phase), so the
        same text gives the same samples only at the same point of the same sequence of calls after a load (and
        with the same random seed, see :meth:`synth`).
        """
        if self._lib is not None:
            self._lib.espeak_Terminate()
            _ctypes.dlclose(self._lib._handle)
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed with data at {self.data_path}")
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_ng_SetRandSeed(0)  # Initialize seeds it from the clock
        self._lib = lib
        self.set_voice(None)

    def _collect(self, wav, n_samples: int, events) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # 0 = keep synthesising

    def variants(self) -> list[str]:
        """Names of the voice variants shipped with the data (``m1``.., ``f1``..), sorted."""
        names = (p.name for p in (self.data_path / "voices" / "!v").iterdir())
        return sorted(n for n in names if re.fullmatch(r"[mf]\d+", n))

    def set_voice(self, variant: str | None) -> None:
        """Select the language voice, optionally with a variant such as ``"m3"`` or ``"f2"``."""
        if variant is not None and variant not in self.variants():
            raise ValueError(f"unknown eSpeak variant {variant!r}; available: {self.variants()}")
        name = self.voice if variant is None else f"{self.voice}+{variant}"
        if self._lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise RuntimeError(f"eSpeak could not load voice {name!r}")

    def set_params(self, rate: int, pitch: int, pitch_range: int, volume: int) -> None:
        """Set speaking rate (words/min, 80-450), pitch and pitch range (0-100), volume (0-200)."""
        for name, value in (("rate", rate), ("pitch", pitch), ("pitch_range", pitch_range), ("volume", volume)):
            if self._lib.espeak_SetParameter(_PARAM[name], int(value), 0) != 0:
                raise RuntimeError(f"eSpeak rejected {name}={value}")

    def synth(self, text: str, seed: int | None = None) -> np.ndarray:
        """Synthesise ``text`` with the current voice and parameters.

        Args:
            text: what to say (UTF-8).
            seed: if given, re-seeds eSpeak's random generator first (breathiness noise of some variants).

        Returns:
            samples: (T,) int16 at ``self.sample_rate`` Hz, untrimmed.
        """
        if seed is not None:
            self._lib.espeak_ng_SetRandSeed(seed)
        self._chunks = []
        buf = text.encode() + b"\0"
        err = self._lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed (error {err}) on {text!r}")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)

    def phonemes(self, text: str) -> str:
        """eSpeak's phoneme mnemonics for ``text``; a ``(xx)`` marker means it switched language (spelled it)."""
        ptr = ctypes.c_char_p(text.encode())
        out = []
        while ptr.value:
            out.append(self._lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, 0).decode())
        return " ".join(out)

    def unspeakable(self, syllables: list[str]) -> list[str]:
        """Tone-numbered syllables this voice does not read as one Mandarin syllable with a tone."""
        bad = []
        for syl in syllables:
            ph = self.phonemes(syl)
            if "(" in ph or len(re.findall(r"\d+", ph)) != 1:
                bad.append(syl)
        return bad


@functools.cache
def engine() -> Espeak:
    """The process-wide Mandarin-pinyin engine (eSpeak cannot run two in one process)."""
    return Espeak("cmn-latn-pinyin")
