"""Map-style dataset over a lazily read manifest; items are keyed by ``(index, epoch)``.

Keying by epoch (the batch sampler supplies it) makes augmentation reproducible per utterance and
per epoch whatever worker processes it, with persistent workers too.
"""
from __future__ import annotations

import logging
import random

from torch.utils.data import Dataset

from asr.augment.chain import utterance_seed
from asr.data.audio import AudioError
from asr.data.manifest import Manifest
from asr.data.pipeline import SamplePipeline

log = logging.getLogger(__name__)


class ManifestDataset(Dataset):
    """Args:
        manifest: the utterances.
        pipeline: per-utterance processing.
        augment: apply the pipeline's augmentations (training) or not (validation, test).
        seed: base seed for augmentation.
    """

    def __init__(self, manifest: Manifest, pipeline: SamplePipeline, augment: bool = False, seed: int = 0):
        self.manifest, self.pipeline, self.augment, self.seed = manifest, pipeline, augment, seed
        if hasattr(pipeline.waveform_augment, "set_donor"):  # multi-speaker splicing draws from here
            pipeline.waveform_augment.set_donor(self.donor)

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, key: int | tuple[int, int]) -> dict | None:
        i, epoch = key if isinstance(key, tuple) else (key, 0)
        row = self.manifest[i]
        try:
            sample = self.pipeline.load(row)
        except AudioError as e:
            log.warning("utterance %s skipped: %s", row["id"], e)
            return None
        rng = random.Random(utterance_seed(self.seed, epoch, row["id"])) if self.augment else None
        return self.pipeline(sample, rng)

    def donor(self, rng: random.Random, exclude_speaker: str) -> dict:
        """A random other-speaker utterance (loaded, not augmented) for splicing."""
        for _ in range(20):
            row = self.manifest[rng.randrange(len(self.manifest))]
            if row.get("speaker") != exclude_speaker:
                try:
                    return self.pipeline.load(row)
                except AudioError:
                    continue
        raise RuntimeError(f"{self.manifest.path}: no loadable utterance of a speaker other than {exclude_speaker!r}")
