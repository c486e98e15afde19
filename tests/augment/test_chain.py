import os
import random
import subprocess
import sys

from asr.augment.chain import AugmentChain, utterance_seed
from asr.augment.speed import SpeedPerturb
from asr.augment.splice import Splice
from asr.augment.volume import Volume
from tests.augment.conftest import make_sample, sine


def test_utterance_seed_is_the_same_in_processes_with_different_hash_salts():
    code = "from asr.augment.chain import utterance_seed; print(utterance_seed(7, 3, 'BAC009S0002W0122'))"
    seeds = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": salt}).stdout.strip() for salt in ("1", "2")}
    assert seeds == {str(utterance_seed(7, 3, "BAC009S0002W0122"))}
    assert len({utterance_seed(b, e, u) for b in (0, 1) for e in (0, 1) for u in ("a", "b")}) == 8


def test_chain_applies_augments_in_order():
    def tag(letter):
        return lambda sample, rng: dict(sample, text=sample["text"] + letter)

    chain = AugmentChain([tag("a"), tag("b"), tag("c")])
    assert chain(make_sample(sine(100, 0.1), "x"), random.Random(0))["text"] == "xabc"


def test_switching_one_augment_off_leaves_the_others_draws_unchanged():
    clean = make_sample(sine(300.0, 0.3))
    for seed in range(8):
        with_volume = AugmentChain([Volume(1.0), SpeedPerturb(1.0, [0.8, 0.9, 1.1, 1.2])])(clean, random.Random(seed))
        without = AugmentChain([Volume(0.0), SpeedPerturb(1.0, [0.8, 0.9, 1.1, 1.2])])(clean, random.Random(seed))
        assert with_volume["speaker"] == without["speaker"]
        assert with_volume["wav"].shape == without["wav"].shape


def test_set_donor_reaches_splice():
    splice = Splice(1.0)
    chain = AugmentChain([Volume(0.5), splice])

    def donor(rng, exclude_speaker):
        return make_sample(sine(500, 0.1), "乙", "S9")

    chain.set_donor(donor)
    assert splice._donor is donor and len(chain) == 2
