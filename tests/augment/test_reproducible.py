"""Properties every waveform augmentation shares: off is identity, seeded, input untouched."""
import random

import pytest
import torch

from asr.augment.noise import AddNoise
from asr.augment.reverb import Reverb
from asr.augment.speed import SpeedPerturb
from asr.augment.splice import Splice
from asr.augment.volume import Volume
from tests.augment.conftest import RATE, make_sample, sine, write_wav


def _donor(rng, exclude_speaker):
    return make_sample(sine(rng.uniform(500, 900), rng.uniform(0.2, 0.4)), "乙", "S9")


def _build(name, prob, tmp_path, **kwargs):
    g = torch.Generator().manual_seed(0)
    if name == "speed":
        return SpeedPerturb(prob, factors=[0.9, 1.1], **kwargs)
    if name == "volume":
        return Volume(prob, **kwargs)
    if name == "noise":
        return AddNoise(prob, write_wav(tmp_path / "n.wav", 0.1 * torch.randn(1, RATE, generator=g)), **kwargs)
    if name == "reverb":
        rirs = [write_wav(tmp_path / f"r{k}.wav", torch.randn(1, 800, generator=g) * torch.exp(-torch.arange(800) / 80))
                for k in range(3)]
        return Reverb(prob, rir_list=rirs, **kwargs)
    splice = Splice(prob, **kwargs)
    splice.set_donor(_donor)
    return splice


NAMES = ["speed", "volume", "noise", "reverb", "splice"]


@pytest.mark.parametrize("name", NAMES)
def test_off_is_a_bit_exact_identity(name, tmp_path, speech):
    for augment in (_build(name, 0.0, tmp_path), _build(name, 1.0, tmp_path, enabled=False)):
        out = augment(speech, random.Random(0))
        assert out is not speech and out.keys() == speech.keys()
        assert all(out[k] is speech[k] for k in speech)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_other_seeds_differ_input_untouched(name, tmp_path, speech):
    augment = _build(name, 1.0, tmp_path)
    before = speech["wav"].clone()
    outs = [augment(speech, random.Random(seed)) for seed in range(6)]
    again = augment(speech, random.Random(0))
    assert torch.equal(outs[0]["wav"], again["wav"]) and outs[0]["text"] == again["text"]
    assert len({tuple(o["wav"][0, :4000:97].tolist()) + (o["wav"].shape[-1],) for o in outs}) > 1
    assert torch.equal(speech["wav"], before)


@pytest.mark.parametrize("name", NAMES)
def test_probability_is_respected(name, tmp_path):
    augment = _build(name, 0.3, tmp_path)
    short = make_sample(sine(300.0, 0.1))
    changed = sum(augment(short, random.Random(seed))["wav"] is not short["wav"] for seed in range(400))
    assert 0.3 * 400 * 0.75 < changed < 0.3 * 400 * 1.25
