"""Sharded tar format for clusters, where millions of small files are slow.

Usage:
    python -m asr.data.shards --manifest data/train.jsonl --out data/shards/train --utts-per-shard 1000

A shard is a plain tar of ``ID.wav`` (the original bytes) and ``ID.json`` (the manifest row) pairs;
``OUT/shards.list`` lists the shards. :class:`ShardDataset` streams them: shards are shuffled per
epoch and dealt out over DDP ranks and DataLoader workers, utterances go through the same
:class:`SamplePipeline`, and a buffer of ``buffer_size`` utterances is sorted and cut into batches by
frames, so memory stays bounded however large the corpus.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import random
import sys
import tarfile
from pathlib import Path
from typing import Iterator

from torch.utils.data import IterableDataset, get_worker_info
from tqdm import tqdm

from asr.augment.chain import utterance_seed
from asr.data.audio import AudioError
from asr.data.batching import pack_by_frames
from asr.data.manifest import Manifest
from asr.data.pipeline import SamplePipeline, collate
from asr.utils.io import atomic_write
from asr.utils.untrusted import parse_json

log = logging.getLogger(__name__)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def pack_shards(manifest: Manifest, out: Path, utts_per_shard: int = 1000) -> list[Path]:
    """Write ``manifest`` as tar shards in ``out`` plus ``out/shards.list``; returns the shard paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in tqdm(range(0, len(manifest), utts_per_shard), desc="shards"):
        path = out / f"shard_{len(paths):06d}.tar"
        with atomic_write(path, "wb") as f, tarfile.open(fileobj=f, mode="w") as tar:
            for i in range(start, min(start + utts_per_shard, len(manifest))):
                row = manifest[i]
                try:
                    audio = Path(row["audio"]).read_bytes()
                except OSError as e:
                    raise AudioError(f"{row['id']}: cannot read {row['audio']} ({e})") from None
                meta = {k: v for k, v in row.items() if k != "audio"}
                _add_bytes(tar, f"{row['id']}.json", json.dumps(meta, ensure_ascii=False).encode())
                _add_bytes(tar, f"{row['id']}.wav", audio)
        paths.append(path)
    with atomic_write(out / "shards.list") as f:
        f.writelines(f"{p.name}\n" for p in paths)
    return paths


def read_shard_list(path: str | Path) -> list[Path]:
    path = Path(path)
    return [path.parent / line.strip() for line in path.read_text().splitlines() if line.strip()]


def iter_shard(path: Path) -> Iterator[tuple[dict, bytes]]:
    """Yields ``(row, wav bytes)`` pairs from one shard, in order."""
    with tarfile.open(path) as tar:
        meta = None
        for member in tar:
            data = tar.extractfile(member).read()
            if member.name.endswith(".json"):
                meta = parse_json(data.decode("utf-8", errors="replace"), f"{path}: {member.name}")
                if not isinstance(meta, dict) or "id" not in meta:
                    raise ValueError(f"{path}: {member.name} is not an utterance's JSON row (no 'id')")
            elif member.name.endswith(".wav"):
                if meta is None or f"{meta['id']}.wav" != member.name:
                    raise ValueError(f"{path}: {member.name} has no preceding {Path(member.name).stem}.json")
                yield meta, data
                meta = None


class ShardDataset(IterableDataset):
    """Streams batches from tar shards.

    Args:
        shard_list: ``shards.list`` written by :func:`pack_shards`.
        pipeline: per-utterance processing.
        max_frames: padded frames per batch.
        shuffle: shuffle shards and batches (training).
        augment: apply the pipeline's augmentations.
        seed: base seed.
        buffer_size: utterances sorted together before batching.
        num_replicas, rank: DDP world size and rank.
    """

    def __init__(self, shard_list: str | Path, pipeline: SamplePipeline, max_frames: int, shuffle: bool = True,
                 augment: bool = False, seed: int = 0, buffer_size: int = 2000, num_replicas: int = 1, rank: int = 0):
        self.shards = read_shard_list(shard_list)
        self.pipeline, self.max_frames, self.shuffle, self.augment = pipeline, max_frames, shuffle, augment
        self.seed, self.buffer_size, self.num_replicas, self.rank = seed, buffer_size, num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def my_shards(self) -> list[Path]:
        """The shards this rank and DataLoader worker read this epoch."""
        shards = list(self.shards)
        if self.shuffle:
            random.Random(self.seed * 100003 + self.epoch).shuffle(shards)
        worker = get_worker_info()
        num_workers, worker_id = (worker.num_workers, worker.id) if worker else (1, 0)
        return shards[self.rank * num_workers + worker_id::self.num_replicas * num_workers]

    def _examples(self) -> Iterator[dict]:
        for shard in self.my_shards():
            for row, data in iter_shard(shard):
                try:
                    sample = self.pipeline.load(row, io.BytesIO(data))
                except AudioError as e:
                    log.warning("utterance %s in %s skipped: %s", row["id"], shard, e)
                    continue
                rng = random.Random(utterance_seed(self.seed, self.epoch, row["id"])) if self.augment else None
                yield self.pipeline(sample, rng)

    def _flush(self, buffer: list[dict], rng: random.Random) -> Iterator[dict]:
        frames = [e["feats"].shape[0] for e in buffer]
        order = sorted(range(len(buffer)), key=frames.__getitem__)
        batches = pack_by_frames(order, frames, self.max_frames)
        if self.shuffle:
            rng.shuffle(batches)
        for batch in batches:
            yield collate([buffer[i] for i in batch])

    def __iter__(self) -> Iterator[dict]:
        rng, buffer = random.Random(self.seed + self.epoch), []
        for example in self._examples():
            if example["feats"].shape[0] > self.max_frames:
                log.warning("utterance %s (%d frames) is longer than max_frames=%d: left out", example["id"], example["feats"].shape[0], self.max_frames)
                continue
            buffer.append(example)
            if len(buffer) >= self.buffer_size:
                yield from self._flush(buffer, rng)
                buffer = []
        if buffer:
            yield from self._flush(buffer, rng)


def main() -> int:
    p = argparse.ArgumentParser(description="Pack a manifest into tar shards.")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--utts-per-shard", type=int, default=1000)
    args = p.parse_args()
    paths = pack_shards(Manifest(args.manifest), args.out, args.utts_per_shard)
    print(f"{len(paths)} shards -> {args.out / 'shards.list'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
