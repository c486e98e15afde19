"""Per-utterance processing shared by every dataset: audio -> augment -> fbank -> CMVN -> SpecAugment.

The same object runs in DataLoader workers for the file manifests and for tar shards, and its
feature half (:meth:`features`) is what inference uses, so training and decoding see identical features.
"""
from __future__ import annotations

import logging
import random
from typing import Callable

import numpy as np
import torch

from asr.data.audio import load_audio
from asr.features.cmvn import GlobalCMVN
from asr.features.fbank import Fbank
from asr.features.kaldi_native import KaldiNativeFbank
from asr.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class SamplePipeline:
    """Turns a manifest row (or an in-memory sample) into model inputs.

    Args:
        fbank: feature extractor.
        cmvn: global CMVN, or None before it has been computed.
        tokenizer: maps text to ids.
        waveform_augment: callable ``(sample, rng) -> sample`` (an :class:`asr.augment.chain.AugmentChain`), or None.
        specaug: callable ``(feats (T, F), rng) -> feats``, or None.
        resample: resample audio of another rate (warning) instead of refusing it.
    """

    def __init__(self, fbank: Fbank, cmvn: GlobalCMVN | None, tokenizer: Tokenizer | None,
                 waveform_augment: Callable | None = None, specaug: Callable | None = None, resample: bool = True):
        self.fbank, self.cmvn, self.tokenizer = fbank, cmvn, tokenizer
        self.waveform_augment, self.specaug, self.resample = waveform_augment, specaug, resample
        self._warned_oov: set[str] = set()

    def load(self, row: dict, audio=None) -> dict:
        """Manifest row -> sample dict with ``wav`` (1, N) float32.

        ``audio`` overrides ``row["audio"]`` with a file object (e.g. a member of a tar shard). A row without
        ``text`` (untranscribed audio being decoded, :data:`asr.data.manifest.UNLABELLED_KEYS`) gets ``""``.
        """
        name = f"{row['id']} ({row.get('audio', 'in-memory')})"
        samples = load_audio(row["audio"] if audio is None else audio, self.fbank.sample_rate, resample=self.resample,
                             name=name)  # (N,) float32, mono by the loader's policy (all channels mixed down)
        wav = torch.from_numpy(samples).unsqueeze(0)  # (1, N)
        return {"id": row["id"], "wav": wav, "sample_rate": self.fbank.sample_rate,
                "text": row.get("text", ""), "speaker": row.get("speaker", "")}

    def features(self, wav: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(1, N) or (N,) audio (a tensor or a NumPy array) -> (T, F) normalised fbank (the inference path).

        With a :class:`asr.features.kaldi_native.KaldiNativeFbank` (what the exported-model backends compute
        with) its NumPy features, as a tensor.
        """
        if isinstance(self.fbank, KaldiNativeFbank):
            feats = torch.from_numpy(self.fbank(np.asarray(wav)))
            return self.cmvn(feats) if self.cmvn is not None else feats
        feats = self.fbank(torch.as_tensor(wav))
        return self.cmvn(feats) if self.cmvn is not None else feats

    def features_are_fixed(self, augment: bool) -> bool:
        """True when an utterance's features before SpecAugment are the same every epoch (so they may be cached):
        no waveform augmentation runs and the fbank has no dither."""
        return (not augment or not self.waveform_augment) and not self.fbank.dither

    def base_features(self, sample: dict, rng: random.Random | None = None) -> tuple[dict, torch.Tensor]:
        """Sample -> (the sample after waveform augmentation, its (T, F) features before SpecAugment); waveform
        augmentation only when ``rng`` is given. Use the returned sample's text: splicing joins transcripts."""
        if rng is not None and self.waveform_augment is not None:
            sample = self.waveform_augment(sample, rng)
        return sample, self.features(sample["wav"])

    def __call__(self, sample: dict, rng: random.Random | None = None, feats: torch.Tensor | None = None) -> dict:
        """Sample -> ``{"id", "feats": (T, F), "ys": (L,) long, "text"}``; augmentations only when ``rng`` is given.

        ``feats``: the sample's :meth:`base_features`, already computed (a feature cache); ``sample`` then needs
        only ``id`` and ``text``.
        """
        if feats is None:
            sample, feats = self.base_features(sample, rng)
        if rng is not None and self.specaug is not None:
            feats = self.specaug(feats, rng)
        out = {"id": sample["id"], "feats": feats, "text": sample["text"]}
        if self.tokenizer is not None:
            oov = self.tokenizer.oov(sample["text"])
            if oov and sample["id"] not in self._warned_oov:
                self._warned_oov.add(sample["id"])
                log.warning("%s: units outside the vocabulary mapped to <unk>: %s", sample["id"], "".join(sorted(set(oov))))
            out["ys"] = torch.tensor(self.tokenizer.encode(sample["text"]), dtype=torch.long)
        return out


def collate(examples: list[dict | None], ignore_id: int = -1) -> dict:
    """Pad a list of examples into a batch; ``None`` entries (failed loads) are dropped and counted.

    Returns:
        ``ids`` list[str], ``feats`` (B, T, F) zero-padded, ``feats_lens`` (B,), ``ys`` (B, L) padded with
        ``ignore_id``, ``ys_lens`` (B,), ``texts`` list[str], ``num_failed`` int.
    """
    ok = [e for e in examples if e is not None]
    if not ok:  # every utterance of the batch failed to load
        return {"ids": [], "texts": [], "feats": torch.zeros(0, 0, 0), "feats_lens": torch.zeros(0, dtype=torch.long),
                "num_failed": len(examples)}
    batch = {
        "ids": [e["id"] for e in ok],
        "texts": [e["text"] for e in ok],
        "feats": torch.nn.utils.rnn.pad_sequence([e["feats"] for e in ok], batch_first=True),
        "feats_lens": torch.tensor([e["feats"].shape[0] for e in ok], dtype=torch.long),
        "num_failed": len(examples) - len(ok),
    }
    if ok and "ys" in ok[0]:
        batch["ys"] = torch.nn.utils.rnn.pad_sequence([e["ys"] for e in ok], batch_first=True, padding_value=ignore_id)
        batch["ys_lens"] = torch.tensor([len(e["ys"]) for e in ok], dtype=torch.long)
    return batch


def batch_utterances(batch: dict) -> int:
    """Utterances in a :func:`collate` batch (for Lightning's ThroughputMonitor)."""
    return len(batch["ids"])


def batch_frames(batch: dict) -> int:
    """Feature frames (unpadded) in a :func:`collate` batch (for Lightning's ThroughputMonitor)."""
    return int(batch["feats_lens"].sum())
