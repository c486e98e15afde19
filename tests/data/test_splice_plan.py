"""Splicing planned before batching: reproducible draws, other speakers' donors, joined lengths within the batch."""
import numpy as np
import pytest

from asr.data.splice_plan import SplicePlan


def frames_of(seconds: float) -> int:
    return int(seconds * 100)


def make_plan(n=2000, prob=0.3, max_frames=1200, seed=0, max_speakers=3):
    rng = np.random.default_rng(1)
    durations = rng.uniform(1.0, 6.0, n)
    speakers = [f"S{k % 7}" for k in range(n)]
    return SplicePlan(durations, speakers, frames_of, prob, max_speakers, 0.5, max_frames, seed=seed), durations, speakers


def test_the_plan_of_an_epoch_depends_on_seed_and_epoch_only():
    a, b, c = make_plan()[0], make_plan()[0], make_plan(seed=1)[0]
    assert a.epoch(3).donors == b.epoch(3).donors and np.array_equal(a.epoch(3).frames, b.epoch(3).frames)
    assert a.epoch(3).donors != a.epoch(4).donors and a.epoch(3).donors != c.epoch(3).donors
    three = b.epoch(3).donors
    b.epoch(4)
    assert b.epoch(3).donors == three  # made again after the cache moved on: the same


@pytest.mark.parametrize("max_speakers", [2, 3])
def test_donors_are_other_speakers_and_the_joined_lengths_fit(max_speakers):
    plan, durations, speakers = make_plan(max_speakers=max_speakers)
    epoch = plan.epoch(0)
    for i, donors in epoch.donors.items():
        assert 1 <= len(donors) <= max_speakers - 1
        assert all(speakers[d] != speakers[i] for d in donors)
        seconds = durations[i] + sum(0.5 + durations[d] for d in donors)  # the longest pauses
        assert epoch.frames[i] == frames_of(seconds) <= 1200
    alone = np.setdiff1d(np.arange(len(durations)), list(epoch.donors))
    assert np.array_equal(epoch.frames[alone], [frames_of(d) for d in durations[alone]])


def test_the_share_joined_is_the_probability_when_the_batch_size_allows_it():
    plan = make_plan(prob=0.3, max_frames=10 ** 6)[0]
    share = len(plan.epoch(0).donors) / 2000
    assert abs(share - 0.3) < 0.04  # binomial sd 0.01
    tight = make_plan(prob=0.3, max_frames=700)[0]  # 7 s: many pairs do not fit
    assert len(tight.epoch(0).donors) < 0.8 * len(plan.epoch(0).donors)


def test_ranks_pack_one_plan_each_part_within_its_frames_and_every_utterance_once():
    from asr.data.batching import DynamicBucketBatchSampler

    plan, durations, _ = make_plan(n=600, prob=0.5, max_frames=1200)
    frames = np.array([frames_of(d) for d in durations])
    ranks = [DynamicBucketBatchSampler(frames, 1200, seed=2, num_replicas=2, rank=r, bucket_size=200,
                                       epoch_frames=lambda e: plan.epoch(e).frames) for r in range(2)]
    for epoch in (0, 1):
        joined = plan.epoch(epoch).frames
        for s in ranks:
            s.set_epoch(epoch)
        assert len(ranks[0].batches()) == len(ranks[1].batches())
        seen = [i for s in ranks for b in s.batches() for i in b]
        one_utterance = sum(a == b for a, b in zip(ranks[0].batches(), ranks[1].batches()))  # dealt to both ranks
        assert set(seen) == set(range(600)) and len(seen) - 600 == one_utterance
        assert all(len(b) * joined[b].max() <= 1200 for s in ranks for b in s.batches())
        static = sum(len(b) * frames[b].max() for s in ranks for b in s.batches())
        assert sum(len(b) * joined[b].max() for s in ranks for b in s.batches()) > static  # packed by joined lengths
