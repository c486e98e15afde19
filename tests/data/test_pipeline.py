"""The DataModule's loaders and the tar shards give the same utterances and features."""
from collections import Counter
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from conftest import make_tone_corpus, prepare
from asr.data.datamodule import ASRDataModule
from asr.data.manifest import Manifest
from asr.data.pipeline import collate
from asr.data.shards import ShardDataset, pack_shards
from asr.features.cmvn import CMVNAccumulator
from asr.features.fbank import Fbank
from asr.tokenizer import CharTokenizer


def tone_data(tmp_path):
    corpus = make_tone_corpus(tmp_path / "c", per_split=6)
    data = tmp_path / "data"
    assert prepare(corpus, data).returncode == 0
    rows = list(Manifest(data / "train.jsonl"))
    CharTokenizer.build(r["text"] for r in rows).save(data / "lang")
    acc = CMVNAccumulator(80)
    for r in rows:
        import soundfile as sf
        acc.add(Fbank()(torch.from_numpy(sf.read(r["audio"], dtype="float32")[0])))
    acc.result().save(data / "cmvn.json")
    return data


def datamodule(data, **kw):
    return ASRDataModule(str(data / "train.jsonl"), str(data / "dev.jsonl"), str(data / "lang"), str(data / "cmvn.json"),
                         Fbank(), **kw)


def test_batches_pad_correctly_and_cover_the_set(tmp_path):
    data = tone_data(tmp_path)
    dm = datamodule(data, global_batch_frames=400, num_workers=0)
    ids = Counter()
    for batch in dm.train_dataloader():
        B, T, F = batch["feats"].shape
        assert F == 80 and B * T <= 400 and batch["feats_lens"].max() == T
        assert (batch["ys"] == -1).sum() == (batch["ys_lens"].max() - batch["ys_lens"]).sum()
        for b in range(B):  # padding is zero, and the text decodes from the labels
            assert batch["feats"][b, batch["feats_lens"][b]:].abs().sum() == 0
            assert dm.tokenizer.decode(batch["ys"][b, : batch["ys_lens"][b]].tolist()) == batch["texts"][b]
        ids.update(batch["ids"])
    assert set(ids.values()) == {1} and len(ids) == len(Manifest(data / "train.jsonl"))


def test_worker_count_does_not_change_the_batches(tmp_path):
    data = tone_data(tmp_path)
    runs = []
    for workers in (0, 2):
        dm = datamodule(data, global_batch_frames=600, num_workers=workers)
        runs.append([(b["ids"], b["feats"]) for b in dm.train_dataloader()])
    assert [r[0] for r in runs[0]] == [r[0] for r in runs[1]]
    assert all(torch.equal(a[1], b[1]) for a, b in zip(*runs))


def test_shards_stream_each_utterance_once_with_the_same_features(tmp_path):
    data = tone_data(tmp_path)
    manifest = Manifest(data / "train.jsonl")
    pack_shards(manifest, tmp_path / "shards", utts_per_shard=2)
    dm = datamodule(data, global_batch_frames=600)
    pipeline = dm.pipeline(train=False)
    reference = {r["id"]: pipeline(pipeline.load(r))["feats"] for r in manifest}
    seen = Counter()
    for rank in range(2):  # two DDP ranks, each with two workers
        ds = ShardDataset(tmp_path / "shards/shards.list", pipeline, 600, shuffle=True, num_replicas=2, rank=rank)
        for batch in DataLoader(ds, batch_size=None, num_workers=2):
            assert batch["feats"].shape[0] * batch["feats"].shape[1] <= 600
            for b, uid in enumerate(batch["ids"]):
                torch.testing.assert_close(batch["feats"][b, : batch["feats_lens"][b]], reference[uid])
            seen.update(batch["ids"])
    assert set(seen) == set(reference) and set(seen.values()) == {1}


def test_unreadable_audio_is_skipped_with_its_id(tmp_path, caplog):
    data = tone_data(tmp_path)
    manifest = Manifest(data / "train.jsonl")
    victim = manifest[0]
    open(victim["audio"], "wb").write(b"garbage")
    dm = datamodule(data, global_batch_frames=100000, num_workers=0)
    batches = list(dm.train_dataloader())
    assert sum(b["num_failed"] for b in batches) == 1
    assert victim["id"] in caplog.text
    assert sum(len(b["ids"]) for b in batches) == len(manifest) - 1


def test_collate_drops_none():
    ex = {"id": "a", "text": "x", "feats": torch.ones(3, 2), "ys": torch.tensor([2, 3])}
    batch = collate([ex, None])
    assert batch["ids"] == ["a"] and batch["num_failed"] == 1
    empty = collate([None, None])
    assert empty["ids"] == [] and empty["num_failed"] == 2 and empty["feats"].shape[0] == 0


def test_feature_cache_gives_the_same_items_and_reads_audio_once(tmp_path):
    """Epoch 2 from the cache (audio files gone) equals epoch 2 computed from audio, SpecAugment included."""
    from asr.augment.specaug import SpecAugment
    from asr.augment.volume import Volume

    data = tone_data(tmp_path)
    specaug = {"specaug": SpecAugment(num_freq_masks=1, freq_width=10, num_time_masks=1, time_width=20)}
    plain = datamodule(data, augment=specaug, num_workers=0).train_dataloader().dataset
    cached = datamodule(data, augment=specaug, num_workers=0, cache_features=True).train_dataloader().dataset
    n = len(plain)
    reference = [plain[(i, 1)] for i in range(n)]
    for i in range(n):
        cached[(i, 0)]  # epoch 0 fills the cache
    for row in Manifest(data / "train.jsonl"):
        Path(row["audio"]).unlink()
    for i in range(n):
        got = cached[(i, 1)]
        assert got["id"] == reference[i]["id"] and torch.equal(got["ys"], reference[i]["ys"])
        assert torch.equal(got["feats"], reference[i]["feats"])
    # features that change every epoch (waveform augmentation, dither) are never cached
    assert datamodule(data, augment={"volume": Volume(prob=1.0)}, cache_features=True,
                      num_workers=0).train_dataloader().dataset.cache is None
    dithered = ASRDataModule(str(data / "train.jsonl"), str(data / "dev.jsonl"), str(data / "lang"),
                             str(data / "cmvn.json"), Fbank(dither=1.0), cache_features=True, num_workers=0)
    assert dithered.train_dataloader().dataset.cache is None


def test_planned_splicing_keeps_every_batch_within_its_frames(tmp_path):
    """Splicing at probability 1: every batch stays within the frames it was packed for and every joined text is
    its pieces' texts; the same splicing drawn while loading (no plan) overflows some batch."""
    import json

    from asr.augment.splice import Splice
    from asr.data.batching import DynamicBucketBatchSampler
    from asr.data.dataset import ManifestDataset

    data = tone_data(tmp_path)
    rows = [r for split in ("train", "dev", "test") for r in Manifest(data / f"{split}.jsonl")]  # 3 speakers
    (data / "mixed.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    index = {r["id"]: i for i, r in enumerate(rows)}
    dm = ASRDataModule(str(data / "mixed.jsonl"), str(data / "dev.jsonl"), str(data / "lang"), str(data / "cmvn.json"),
                       Fbank(), augment={"splice": Splice(1.0, max_speakers=3, gap_sec=[0.05, 0.1])},
                       global_batch_frames=700, num_workers=0)
    loader = dm.train_dataloader()
    plan = loader.dataset.splice_plan.epoch(0)
    joined = 0
    for batch in loader:
        B, T, _ = batch["feats"].shape
        assert B * T <= 700
        for uid, n, text in zip(batch["ids"], batch["feats_lens"].tolist(), batch["texts"]):
            i = index[uid]
            pieces = [i, *plan.donors.get(i, ())]
            assert n <= plan.frames[i] and sorted(text) == sorted("".join(rows[k]["text"] for k in pieces))
            joined += len(pieces) > 1
    assert joined >= len(rows) // 2

    frames = [Fbank().num_frames(int(r["duration"] * 16000)) for r in rows]
    unplanned = DataLoader(ManifestDataset(Manifest(data / "mixed.jsonl"), dm.pipeline(True), augment=True),
                           batch_sampler=DynamicBucketBatchSampler(frames, 700), collate_fn=collate)
    assert max(b["feats"].shape[0] * b["feats"].shape[1] for b in unplanned) > 700


def test_splicing_with_shards_is_refused_before_training(tmp_path):
    """Shards have no donors to splice with: the loader refuses at once, naming the settings, instead of the first
    spliced utterance failing inside a worker."""
    import pytest

    from asr.augment.splice import Splice

    data = tone_data(tmp_path)
    pack_shards(Manifest(data / "train.jsonl"), tmp_path / "shards", utts_per_shard=2)
    shards = str(tmp_path / "shards/shards.list")
    with pytest.raises(ValueError, match="augment.splice.prob=0.2.*train_shards"):
        datamodule(data, train_shards=shards, augment={"splice": Splice(0.2)}, num_workers=0).train_dataloader()
    assert datamodule(data, train_shards=shards, augment={"splice": Splice(0.0)},
                      num_workers=0).train_dataloader() is not None
