"""A bank of audio clips (noises, room impulse responses) named by list files and folders, decoded on demand."""
from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.utils.io import read_jsonl

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def expand_sources(sources: str | Sequence[str]) -> list[Path]:
    """Turn list files and folders into audio paths.

    Each source is one of: a folder (its audio files, searched recursively, sorted); an audio file; a JSON-lines
    manifest (``.jsonl``, the ``audio`` key of each row); a text list with one audio path per line (blank lines and
    ``#`` comments skipped). Relative paths in a list are taken from the list file's folder. A source that does not
    exist is returned as is, so that the caller reports it with the other missing files.
    """
    paths = []
    for source in [sources] if isinstance(sources, (str, Path)) else sources:
        source = Path(source)
        if source.is_dir():
            paths += sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        elif source.suffix.lower() in AUDIO_SUFFIXES or not source.is_file():
            paths.append(source)
        elif source.suffix == ".jsonl":
            paths += [source.parent / row["audio"] for row in read_jsonl(source)]
        else:
            lines = (line.strip() for line in source.read_text(encoding="utf-8").splitlines())
            paths += [source.parent / line for line in lines if line and not line.startswith("#")]
    return paths


class AudioBank:
    """Audio clips at one sample rate, read lazily and kept in a least-recently-used cache of bounded size.

    All files are checked (``soundfile.info``) at construction: unreadable or missing ones are skipped with one
    warning naming them; none usable is an error. Files at another sample rate are resampled on loading (one
    warning at construction) and cached resampled.

    Args:
        sources: list files and/or folders, see :func:`expand_sources`.
        sample_rate: rate the clips are returned at.
        cache_mb: bound on the decoded audio kept in memory (per process: each DataLoader worker has its own).
        owner: name used in messages, e.g. ``"AddNoise"``.
    """

    def __init__(self, sources: str | Sequence[str], sample_rate: int, cache_mb: float = 256.0,
                 owner: str = "AudioBank"):
        self.sample_rate = int(sample_rate)
        self.cache_bytes = int(cache_mb * 2**20)
        self.owner = owner
        self.paths: list[Path] = []
        bad, other_rates = [], set()
        for path in expand_sources(sources):
            try:
                info = sf.info(str(path))
            except Exception as e:  # missing, not audio, or corrupt header
                bad.append(f"{path} ({type(e).__name__})")
                continue
            self.paths.append(path)
            if info.samplerate != self.sample_rate:
                other_rates.add(info.samplerate)
        if bad:
            shown = "; ".join(bad[:10]) + (f"; ... and {len(bad) - 10} more" if len(bad) > 10 else "")
            warnings.warn(f"{owner}: skipping {len(bad)} unreadable audio file(s) listed in {sources}: {shown}",
                          stacklevel=3)
        if not self.paths:
            raise ValueError(f"{owner}: no usable audio file in {sources}")
        if other_rates:
            warnings.warn(f"{owner}: files at {sorted(other_rates)} Hz in {sources} are resampled to "
                          f"{self.sample_rate} Hz when first loaded", stacklevel=3)
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._cached_bytes = 0

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> torch.Tensor:
        """Return clip ``index``: ``(C, L) float32`` at ``sample_rate``."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        path = self.paths[index]
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (L, C)
        except Exception as e:
            raise RuntimeError(f"{self.owner}: cannot read {path}: {e}") from e
        clip = torch.from_numpy(data.T.copy())  # (C, L)
        if rate != self.sample_rate:
            clip = AF.resample(clip, rate, self.sample_rate)
        self._remember(index, clip)
        return clip

    def _remember(self, index: int, clip: torch.Tensor) -> None:
        size = clip.numel() * clip.element_size()
        if size > self.cache_bytes:
            return
        while self._cached_bytes + size > self.cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.numel() * old.element_size()
        self._cache[index] = clip
        self._cached_bytes += size
