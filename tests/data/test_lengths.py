"""Training-length statistics: computed from a manifest, written by training into the model file, read as data."""
from __future__ import annotations

import json

import numpy as np
import pytest

from asr.data.lengths import TrainingLengths
from asr.modelfile import load_model_file


def test_statistics_match_numpy():
    d = np.random.default_rng(0).uniform(1.0, 9.0, 1001)
    lengths = TrainingLengths.from_durations(d)
    assert lengths.utterances == 1001 and lengths.max == round(d.max(), 3)
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        assert getattr(lengths, name) == pytest.approx(np.percentile(d, q), abs=1e-3)
    assert TrainingLengths.from_dict(json.loads(json.dumps(lengths.to_dict()))) == lengths


@pytest.mark.parametrize("edit, message", [
    ({"evil": 1}, "unknown key"),
    ({"max": "9"}, "must be float"),
    ({"p99": 100.0}, "impossible statistics"),
    ({"utterances": 0}, "impossible statistics"),
    ({"mean": {"_target_": "os.system"}}, "must be float"),
])
def test_bad_statistics_are_refused_naming_where(edit, message):
    good = TrainingLengths.from_durations(np.array([1.0, 2.0, 3.0])).to_dict()
    with pytest.raises(ValueError, match=f"^here: .*{message}"):
        TrainingLengths.from_dict({**good, **edit}, "here")
    with pytest.raises(ValueError, match="missing key"):
        TrainingLengths.from_dict({k: v for k, v in good.items() if k != "max"}, "here")


def test_training_records_its_manifest_lengths_in_the_model_file(tiny_model_file, prepared_synthetic):
    assert load_model_file(tiny_model_file).training_lengths == TrainingLengths.from_manifest(
        prepared_synthetic / "train.jsonl")
