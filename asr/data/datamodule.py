"""Lightning DataModule: manifests (or tar shards) -> dynamic, length-bucketed batches of features.

Batch size is given as ``global_batch_frames``: the padded feature frames one optimizer step sees,
summed over devices and gradient-accumulation steps. Each device batch gets
``global_batch_frames / (world_size * accumulate_grad_batches)`` frames, so the same config trains
with the same effective batch on 1 GPU and on 8 (with 8 GPUs each device batch is 8 times smaller).
"""
from __future__ import annotations


import functools
import multiprocessing

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from asr.augment.config import split_augment
from asr.augment.splice import Splice
from asr.data.batching import DynamicBucketBatchSampler, per_device_max_frames
from asr.data.dataset import ManifestDataset
from asr.data.manifest import Manifest
from asr.data.pipeline import SamplePipeline, collate
from asr.data.shards import ShardDataset
from asr.data.splice_plan import SplicePlan
from asr.features.cmvn import GlobalCMVN
from asr.features.fbank import Fbank
from asr.tokenizer import Tokenizer, load_tokenizer


class ASRDataModule(pl.LightningDataModule):
    """Args:
        train_manifest, val_manifest, test_manifest: JSON-lines manifests (test optional).
        lang_dir: folder of the tokenizer (``units.txt``, and ``bpe.model`` for BPE).
        tokenizer_kind: ``char``, ``pinyin`` or ``bpe``.
        cmvn: global CMVN statistics file.
        features: the feature extractor.
        augment: augmentations for training by name (``conf/augment/*.yaml``, see :mod:`asr.augment.config`):
            the waveform ones in order, ``specaug`` on the features; or None.
        global_batch_frames: padded frames per optimizer step over all devices (see the module docstring).
        val_max_frames: frames per validation batch on each device (default: the training value).
        max_batch_size: optional cap on utterances per batch.
        bucket_size: utterances sorted together when forming training batches.
        num_workers: DataLoader workers per device.
        seed: base seed of batching and augmentation.
        train_shards: a ``shards.list`` to stream training data from instead of ``train_manifest``.
        resample: resample audio of another rate (with a warning) instead of refusing it.
        cache_features: keep features in memory across epochs when they do not change (no waveform augmentation,
            no dither; see :class:`asr.data.dataset.ManifestDataset`): for small corpora such as the CPU demo's.
    """

    def __init__(self, train_manifest: str, val_manifest: str, lang_dir: str, cmvn: str, features: Fbank,
                 test_manifest: str | None = None, tokenizer_kind: str = "char", augment: dict | None = None,
                 global_batch_frames: int = 20000, val_max_frames: int | None = None, max_batch_size: int | None = None,
                 bucket_size: int = 5000, num_workers: int = 2, seed: int = 0, train_shards: str | None = None,
                 resample: bool = True, cache_features: bool = False):
        super().__init__()
        self.manifests = {"train": train_manifest, "val": val_manifest, "test": test_manifest}
        self.tokenizer: Tokenizer = load_tokenizer(lang_dir, tokenizer_kind)
        self.cmvn, self.features, self.resample = GlobalCMVN.load(cmvn), features, resample
        self.augment, self.specaug = split_augment(augment)
        self.global_batch_frames, self.val_max_frames = global_batch_frames, val_max_frames
        self.max_batch_size, self.bucket_size, self.num_workers = max_batch_size, bucket_size, num_workers
        self.seed, self.train_shards, self.cache_features = seed, train_shards, cache_features
        self.samplers: dict[str, DynamicBucketBatchSampler] = {}
        self.resume_state: dict | None = None

    def pipeline(self, train: bool) -> SamplePipeline:
        return SamplePipeline(self.features, self.cmvn, self.tokenizer, self.augment if train else None,
                              self.specaug if train else None, self.resample)

    def _world(self) -> tuple[int, int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0, 1
        return trainer.world_size, trainer.global_rank, trainer.accumulate_grad_batches

    @property
    def max_frames(self) -> int:
        world, _, accumulate = self._world()
        return per_device_max_frames(self.global_batch_frames, world, accumulate)

    def _loader(self, split: str) -> DataLoader:
        train = split == "train"
        world, rank, _ = self._world()
        max_frames = self.max_frames if train else (self.val_max_frames or self.max_frames)
        if train and self.train_shards:
            if (splice := self._splice()) is not None:
                raise ValueError(f"multi-speaker splicing (augment.splice.prob={splice.prob}) draws donors "
                                 f"from a manifest and is not available with data.train_shards={self.train_shards}: "
                                 "set augment.splice.prob=0 or train from the manifest")
            dataset = ShardDataset(self.train_shards, self.pipeline(True), max_frames, shuffle=True, augment=True,
                                   seed=self.seed, num_replicas=world, rank=rank)
            self.samplers[split] = dataset  # has set_epoch too
            return DataLoader(dataset, batch_size=None, num_workers=self.num_workers,
                              multiprocessing_context=worker_context(self.num_workers))
        if self.manifests[split] is None:
            raise ValueError(f"no {split} manifest configured (data.{split}_manifest)")
        manifest = Manifest(self.manifests[split])
        frames = [seconds_to_frames(self.features, d) for d in manifest.durations]
        ids = [manifest[i]["id"] for i in range(len(manifest))] if max(frames, default=0) > max_frames else None
        plan = self._splice_plan(manifest, max_frames) if train else None
        sampler = DynamicBucketBatchSampler(frames, max_frames, shuffle=train, seed=self.seed, bucket_size=self.bucket_size,
                                            num_replicas=world, rank=rank, ids=ids, max_batch_size=self.max_batch_size,
                                            epoch_frames=(lambda epoch: plan.epoch(epoch).frames) if plan else None)
        self.samplers[split] = sampler
        if train and self.resume_state:
            sampler.load_state_dict(self.resume_state)
            self.resume_state = None
        dataset = ManifestDataset(manifest, self.pipeline(train), augment=train, seed=self.seed,
                                  cache_features=self.cache_features, splice_plan=plan)
        return DataLoader(dataset, batch_sampler=sampler, num_workers=self.num_workers, collate_fn=collate,
                          persistent_workers=self.num_workers > 0,
                          multiprocessing_context=worker_context(self.num_workers))

    def _splice(self) -> Splice | None:
        """The training augmentations' splicing, when it is on."""
        return next((a for a in self.augment.augments if isinstance(a, Splice) and a.active), None)

    def _splice_plan(self, manifest: Manifest, max_frames: int) -> SplicePlan | None:
        """The training set's splicing plan, when the augmentations splice (:mod:`asr.data.splice_plan`)."""
        splice = self._splice()
        if splice is None:
            return None
        speakers = [manifest[i].get("speaker", "") for i in range(len(manifest))]
        return SplicePlan(manifest.durations, speakers, functools.partial(seconds_to_frames, self.features),
                          splice.prob, splice.max_speakers, splice.gap_sec[1], max_frames, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def state_dict(self) -> dict:
        """Where training is in the data (saved in every checkpoint by Lightning)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return {}
        return {"epoch": trainer.current_epoch,
                "batches_done": trainer.fit_loop.epoch_loop.batch_progress.current.processed}

    def load_state_dict(self, state: dict) -> None:
        """On resume: the training sampler continues after the last batch trained on."""
        self.resume_state = state or None

    def set_epoch(self, epoch: int) -> None:
        """Reseed the training order and augmentation for ``epoch`` (called at each epoch start)."""
        if "train" in self.samplers:
            self.samplers["train"].set_epoch(epoch)


def seconds_to_frames(features: Fbank, seconds: float) -> int:
    """Feature frames of ``seconds`` of audio, as the sampler counts them (a function that workers can unpickle)."""
    return features.num_frames(int(seconds * features.sample_rate))


def worker_context(num_workers: int) -> str | None:
    """How DataLoader workers are started: the process's own start method (None) where it is one of Python's, else
    fork (PyTorch's Linux default). Hydra's joblib launcher runs each sweep job in a loky worker, whose start method
    "loky" cannot start DataLoader workers: every job failed before its first step with Lightning's "Please call
    `iter(combined_loader)` first" (found in session 7; tests/data/test_worker_start_method.py). spawn and forkserver
    children fail there too: they are told to use the "loky" method, which they do not know."""
    method = multiprocessing.get_start_method(allow_none=True)
    if num_workers == 0 or method in (None, "fork", "spawn", "forkserver"):
        return None
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
