"""Map-style dataset over a lazily read manifest; items are keyed by ``(index, epoch)``.

Keying by epoch (the batch sampler supplies it) makes augmentation reproducible per utterance and
per epoch whatever worker processes it, with persistent workers too.
"""
from __future__ import annotations

import logging
import random

import torch
from torch.utils.data import Dataset

from asr.augment.chain import utterance_seed
from asr.data.audio import AudioError
from asr.data.manifest import Manifest
from asr.data.pipeline import SamplePipeline
from asr.data.splice_plan import SplicePlan

log = logging.getLogger(__name__)


class ManifestDataset(Dataset):
    """Args:
        manifest: the utterances.
        pipeline: per-utterance processing.
        augment: apply the pipeline's augmentations (training) or not (validation, test).
        seed: base seed for augmentation.
        cache_features: keep each utterance's features (before SpecAugment) in memory after their first
            computation and reuse them in later epochs; only when they are the same every epoch
            (:meth:`SamplePipeline.features_are_fixed`), ignored otherwise. Costs 32 kB per second of audio
            (80-dim float32) in each worker process: for corpora that fit in memory (the synthetic demo's 6.8 h is
            0.8 GB), not for AISHELL-1's 150 h.
        splice_plan: the donors of multi-speaker splicing, planned per epoch before batching (the sampler packs
            by the same plan); loaded here and handed to ``Splice`` as ``sample["splice_donors"]``. None: splicing,
            if any, draws its donors from :meth:`donor` while loading.
    """

    def __init__(self, manifest: Manifest, pipeline: SamplePipeline, augment: bool = False, seed: int = 0,
                 cache_features: bool = False, splice_plan: SplicePlan | None = None):
        self.manifest, self.pipeline, self.augment, self.seed = manifest, pipeline, augment, seed
        self.splice_plan = splice_plan if augment else None
        self.cache: dict[str, torch.Tensor] | None = {} if cache_features and pipeline.features_are_fixed(augment) else None
        if hasattr(pipeline.waveform_augment, "set_donor"):  # multi-speaker splicing draws from here
            pipeline.waveform_augment.set_donor(self.donor)

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, key: int | tuple[int, int]) -> dict | None:
        i, epoch = key if isinstance(key, tuple) else (key, 0)
        row = self.manifest[i]
        rng = random.Random(utterance_seed(self.seed, epoch, row["id"])) if self.augment else None
        cached = self.cache.get(row["id"]) if self.cache is not None else None
        if cached is not None:
            return self.pipeline(row, rng, feats=cached)
        try:
            sample = self.pipeline.load(row)
        except AudioError as e:
            log.warning("utterance %s skipped: %s", row["id"], e)
            return None
        if self.splice_plan is not None:
            sample["splice_donors"] = self._planned_donors(i, epoch)
        sample, feats = self.pipeline.base_features(sample, rng)  # the augmented sample: splicing joins texts
        if self.cache is not None:
            self.cache[row["id"]] = feats
        return self.pipeline(sample, rng, feats=feats)

    def _planned_donors(self, i: int, epoch: int) -> list[dict]:
        """The loaded donors the splice plan joins to utterance ``i`` in ``epoch`` (an unreadable one is left out)."""
        donors = []
        for d in self.splice_plan.epoch(epoch).donors.get(i, ()):
            try:
                donors.append(self.pipeline.load(self.manifest[d]))
            except AudioError as e:
                log.warning("splicing donor %s left out: %s", self.manifest[d]["id"], e)
        return donors

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
