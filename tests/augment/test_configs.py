"""The Hydra configs in conf/augment build the augmentations they document, in the documented order, by name."""
import random
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from asr.augment.config import load_augment_config, split_augment
from asr.augment.noise import AddNoise
from asr.augment.reverb import Reverb
from asr.augment.specaug import SpecAugment
from asr.augment.speed import SpeedPerturb
from asr.augment.splice import Splice
from asr.augment.volume import Volume
from tests.augment.conftest import RATE, make_sample, sine, write_wav

CONF = Path(__file__).resolve().parents[2] / "conf"
ORDER = [Splice, SpeedPerturb, Volume, Reverb, AddNoise]  # the order documented in the yaml files
NAMES = ["splice", "speed", "volume", "reverb", "noise"]


def _build(name: str, *overrides: str, data: dict | None = None):
    """Compose ``augment=name`` with command-line ``overrides`` and build (chain, specaug)."""
    data_overrides = [f"+{key}={value}" for key, value in (data or {}).items()]
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(overrides=[f"+augment={name}", *data_overrides, *overrides])
    return split_augment(instantiate(cfg.augment))


@pytest.fixture
def data_lists(tmp_path):
    g = torch.Generator().manual_seed(0)
    noise = write_wav(tmp_path / "noise.wav", 0.1 * torch.randn(1, RATE, generator=g))
    rir = write_wav(tmp_path / "rir.wav", torch.randn(1, 400, generator=g) * torch.exp(-torch.arange(400) / 40))
    return {"noise_list": noise, "rir_list": rir}


def test_none_is_empty():
    chain, specaug = _build("none")
    assert len(chain) == 0 and specaug is None


def test_default_is_speed_and_specaug_and_needs_no_files():
    chain, specaug = _build("default")
    assert [type(a) for a in chain.augments] == ORDER
    assert [a.active for a in chain.augments] == [False, True, False, False, False]
    assert chain.augments[1].factors == [0.9, 1.0, 1.1]
    assert isinstance(specaug, SpecAugment) and (specaug.num_freq_masks, specaug.freq_width) == (2, 10)
    assert (specaug.num_time_masks, specaug.time_width) == (2, 50)


def test_noise_in_default_can_be_switched_on_from_the_command_line(data_lists):
    chain, _ = _build("default", "augment.noise.prob=1.0", data={"noise_list": data_lists["noise_list"]})
    assert chain.augments[4].active and len(chain.augments[4].bank) == 1
    with pytest.raises(Exception, match="noise_list"):
        _build("default", "augment.noise.prob=1.0")


def composed(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return OmegaConf.to_container(compose("train", overrides=list(overrides)), resolve=False)


def changed_keys(a, b, prefix: str = "") -> set[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return set() if a == b else {prefix.rstrip(".")}
    return {k for key in a.keys() | b.keys() for k in changed_keys(a.get(key), b.get(key), f"{prefix}{key}.")}


def test_an_override_by_name_changes_exactly_that_field():
    assert changed_keys(composed(), composed("augment.noise.prob=0.5")) == {"augment.noise.prob"}
    assert changed_keys(composed("augment=full"), composed("augment=full", "augment.speed.factors=[0.9,1.1]")) == {
        "augment.speed.factors"}


def test_full_extends_default_with_other_probabilities_and_time_warp():
    default, full = composed()["augment"], composed("augment=full")["augment"]
    assert list(full) == list(default) == [*NAMES, "specaug"]
    assert changed_keys(default, full) == {f"{n}.prob" for n in NAMES if n != "speed"} | {"specaug.time_warp"}
    # the tools read the same files outside Hydra, defaults list included
    assert OmegaConf.to_container(load_augment_config(CONF / "augment/full.yaml")) == OmegaConf.to_container(
        OmegaConf.create({"augment": full, "noise_list": None, "rir_list": None}), resolve=True)["augment"]


def test_full_runs_everything_and_each_entry_switches_off_by_name(data_lists):
    chain, specaug = _build("full", data=data_lists)
    assert [type(a) for a in chain.augments] == ORDER and all(a.active for a in chain.augments)
    chain.set_donor(lambda rng, exclude_speaker: make_sample(sine(700.0, 0.3), "乙", "S9"))
    out = chain(make_sample(sine(300.0, 0.5)), random.Random(0))
    assert out["wav"].shape[0] == 1 and out["wav"].abs().max() <= 1.0
    assert specaug(torch.rand(100, 80) + 1, random.Random(0)).shape == (100, 80)
    for index, name in enumerate(NAMES):
        chain, _ = _build("full", f"augment.{name}.prob=0", data=data_lists)
        assert [a.active for a in chain.augments] == [i != index for i in range(len(ORDER))]
    assert _build("full", "augment.specaug=null", data=data_lists)[1] is None


def test_full_can_simulate_rooms_instead_of_an_rir_list(data_lists):
    pytest.importorskip("pyroomacoustics")
    chain, _ = _build("full", "augment.reverb.simulate={num_rooms:2,max_order:2}",
                      data={"noise_list": data_lists["noise_list"]})
    assert chain.augments[3].rooms is not None and len(chain.augments[3].rooms) == 2


def test_train_config_picks_an_augment_and_its_lists_as_train_py_does(data_lists):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose("train", overrides=["augment=full", f"noise_list={data_lists['noise_list']}",
                                          f"rir_list={data_lists['rir_list']}", "augment.splice.prob=0"])
    chain, specaug = split_augment(instantiate(cfg.augment))
    assert [type(a) for a in chain.augments] == ORDER and isinstance(specaug, SpecAugment)
    assert [a.active for a in chain.augments] == [False, True, True, True, True]
    assert chain.augments[4].bank.paths[0].name == "noise.wav"
