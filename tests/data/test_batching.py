from collections import Counter

import numpy as np
import pytest

from asr.data.batching import DynamicBucketBatchSampler, pack_by_frames, per_device_max_frames


def lengths(n=500, seed=0):
    return np.random.default_rng(seed).integers(50, 1500, size=n)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("max_frames", [1500, 4000, 20000])
def test_never_exceeds_and_visits_each_once(shuffle, max_frames):
    frames = lengths()
    sampler = DynamicBucketBatchSampler(frames, max_frames, shuffle=shuffle, bucket_size=128)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        for batch in batches:
            idx = [i for i, e in batch]
            assert all(e == epoch for _, e in batch)
            assert max(frames[idx]) * len(idx) <= max_frames
        seen = Counter(i for batch in batches for i, _ in batch)
        assert sorted(seen) == list(range(len(frames))) and set(seen.values()) == {1}


def test_epochs_differ_and_repeat_with_seed():
    frames = lengths()
    a, b = (DynamicBucketBatchSampler(frames, 8000, seed=3) for _ in range(2))
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)


def test_validation_order_is_sorted_and_tight():
    frames = lengths()
    batches = DynamicBucketBatchSampler(frames, 8000, shuffle=False).batches()
    flat = [i for b in batches for i in b]
    assert list(frames[flat]) == sorted(frames)
    # greedy packing: adding the next utterance to a batch would have overflowed it
    for b, nxt in zip(batches, batches[1:]):
        assert max(frames[b + [nxt[0]]]) * (len(b) + 1) > 8000


def test_ddp_ranks_share_each_global_batch_and_each_part_fits():
    frames = lengths(501)
    ranks = [DynamicBucketBatchSampler(frames, 1500, seed=1, num_replicas=4, rank=r) for r in range(4)]
    per_rank = [r.batches() for r in ranks]
    assert len({len(b) for b in per_rank}) == 1  # every rank steps the same number of times
    for step in zip(*per_rank):
        assert all(max(frames[part]) * len(part) <= 1500 for part in step)
        assert max(map(len, step)) - min(map(len, step)) <= 1
    seen = Counter(i for b in per_rank for batch in b for i in batch)
    assert set(seen) == set(range(len(frames)))
    repeated = sum(seen.values()) - len(frames)  # only global batches smaller than 4 repeat utterances
    assert repeated <= 3 * sum(1 for step in zip(*per_rank) if len(set().union(*map(set, step))) < 4)


def test_one_device_and_two_see_the_same_global_batches_when_packing_agrees():
    frames = np.full(400, 300)  # equal lengths: 8 utterances fill 2,400 frames, 4 fill each of two devices' 1,200
    single = DynamicBucketBatchSampler(frames, 2400, seed=4, bucket_size=64).batches()
    ranks = [DynamicBucketBatchSampler(frames, 1200, seed=4, bucket_size=64, num_replicas=2, rank=r).batches()
             for r in range(2)]
    assert [sorted(a + b) for a, b in zip(*ranks)] == [sorted(batch) for batch in single]


def test_every_epoch_has_the_same_length_and_visits_everything_once():
    frames = lengths(3000, seed=2)
    sampler = DynamicBucketBatchSampler(frames, 6000, seed=1, bucket_size=300)
    counts = []
    for epoch in range(6):
        sampler.set_epoch(epoch)
        counts.append(len(sampler))
        assert sorted(i for batch in sampler for i, _ in batch) == list(range(len(frames)))
    assert len(set(counts)) == 1
    resumed = DynamicBucketBatchSampler(frames, 6000, seed=1, bucket_size=300)
    resumed.set_epoch(5)  # a run resumed in a later epoch has the same epoch length
    assert len(resumed) == counts[0]


def test_validation_under_ddp_counts_every_utterance_once():
    frames = lengths(301)
    ranks = [DynamicBucketBatchSampler(frames, 4000, shuffle=False, num_replicas=3, rank=r) for r in range(3)]
    seen = [i for r in ranks for batch in r.batches() for i in batch]
    assert sorted(seen) == list(range(len(frames)))


def test_too_long_utterances_are_listed_not_batched(caplog):
    frames = np.array([100, 5000, 200])
    sampler = DynamicBucketBatchSampler(frames, 1000, ids=["a", "b", "c"])
    assert sampler.too_long == ["b"]
    assert "b" in caplog.text
    assert sorted(i for batch in sampler for i, _ in batch) == [0, 2]


def test_resume_skips_batches_already_done():
    frames = lengths()
    sampler = DynamicBucketBatchSampler(frames, 8000, seed=5)
    sampler.set_epoch(2)
    full = list(sampler)
    resumed = DynamicBucketBatchSampler(frames, 8000, seed=5)
    resumed.load_state_dict(sampler.state_dict(batches_done=7))
    assert list(resumed) == full[7:]
    assert list(resumed) == full  # only the first iteration after resuming skips
    after_epoch = DynamicBucketBatchSampler(frames, 8000, seed=5)
    after_epoch.load_state_dict(sampler.state_dict(batches_done=len(full)))
    assert after_epoch.epoch == 3 and len(list(after_epoch)) == len(after_epoch)


def test_pack_respects_max_batch_size():
    assert pack_by_frames(range(5), np.ones(5, int), 100, max_batch_size=2) == [[0, 1], [2, 3], [4]]


def test_global_batch_frames_scale_with_devices():
    assert per_device_max_frames(64000, 1) == 8 * per_device_max_frames(64000, 8)
    assert per_device_max_frames(64000, 2, 4) == 8000
