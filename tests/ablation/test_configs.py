"""The ablation sweeps of conf/ablation/ compose, and each arm changes what it says against the demo's config."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
# the training sweeps: an arm file each (conf/ablation/NAME/ARM.yaml); the decoding sweep's arms are a grid of search
# settings over trained models (tests/ablation/test_decoding_sweep.py)
SWEEPS = sorted(p.stem for p in (CONF / "ablation").glob("*.yaml") if (CONF / "ablation" / p.stem).is_dir())
# what conf/ablation/base.yaml pins to the demo recipe of the recorded sweeps (the demo has moved on since)
PINNED = ("model.encoder.subsampling_channels=64", "data.global_batch_frames=4000", "optim.optimizer.fused=false")


@functools.lru_cache(maxsize=None)
def compose_train(*overrides: str, hydra_config: bool = False):
    """The composed training config (cached: composing takes a while; callers do not modify it)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_config)


def sweep_params(name: str) -> dict[str, list[str]]:
    """The sweep file's hydra.sweeper.params as key -> values."""
    cfg = compose_train(f"+ablation={name}", hydra_config=True)
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()])
    return {o.get_key_element(): list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.value()]
            for o in parsed}


def arms(name: str) -> list[str]:
    return sweep_params(name)[f"+ablation/{name}"]


def arm_config(name: str, arm: str, *extra: str):
    # the order of a multirun job: the sweeper's overrides first, then the command line's +ablation=NAME
    return compose_train(f"+ablation/{name}={arm}", f"+ablation={name}", *extra)


def test_there_are_the_five_training_sweeps_and_the_decoding_sweep():
    assert set(SWEEPS) == {"focal", "posenc", "sampling", "augment", "encoder"}
    assert {p.stem for p in (CONF / "ablation").glob("*.yaml")} == set(SWEEPS) | {"base", "decoding"}


@pytest.mark.parametrize("name", SWEEPS)
def test_every_arm_file_is_swept_with_two_seeds_and_composes(name):
    params = sweep_params(name)
    assert params["seed"] == ["1", "2"]
    files = sorted(p.stem for p in (CONF / "ablation" / name).glob("*.yaml"))
    assert sorted(arms(name)) == files
    demo = compose_train("experiment=demo", "seed=1", *PINNED)
    for arm in arms(name):
        cfg = arm_config(name, arm)
        assert cfg.ablation.name == name and cfg.ablation.arm == arm
        assert cfg.ablation.baseline in arms(name)
        assert cfg.trainer.max_time == compose_train(f"+ablation={name}", f"+ablation/{name}={arm}").trainer.max_time
        assert cfg.evaluate.modes and cfg.resume == "auto"
        # everything the arm does not set is the demo's (the schedule's length follows trainer.max_steps, which the
        # sweep sets: compare the unresolved configs)
        assert OmegaConf.to_container(cfg.optim) == OmegaConf.to_container(demo.optim) and cfg.data == demo.data
        assert cfg.optim.scheduler.total_steps == cfg.trainer.max_steps
        # the order of the two appended configs does not matter: they set different keys
        assert cfg == compose_train(f"+ablation={name}", f"+ablation/{name}={arm}")


def test_posenc_arms_set_the_encoding():
    for arm in arms("posenc"):
        assert arm_config("posenc", arm).model.encoder.pos_enc == arm


def test_focal_arms_against_the_loss_configs():
    base = arm_config("focal", "label_smoothing")
    assert base.model.att_loss == compose_train("experiment=demo", *PINNED).model.att_loss
    for gamma in (1, 2):
        cfg = arm_config("focal", f"focal_gamma{gamma}")
        focal = compose_train("experiment=demo", *PINNED, "loss@model.att_loss=focal", f"model.att_loss.gamma={gamma}")
        assert cfg.model == focal.model


def test_sampling_arms_use_the_sampling_configs_with_the_sweeps_ramp():
    for arm in arms("sampling"):
        cfg = arm_config("sampling", arm)
        ref = compose_train("experiment=demo", f"sampling={arm}", f"sampling.start_step={cfg.sampling.start_step}",
                            f"sampling.ramp_steps={cfg.sampling.ramp_steps}")
        assert cfg.sampling == ref.sampling
    assert arm_config("sampling", "none").sampling.final_prob == 0.0


def test_transformer_arm_has_the_switches_of_the_transformer_model():
    tiny = arm_config("encoder", "conformer").model.encoder
    transformer = arm_config("encoder", "transformer").model.encoder
    big = compose_train("model=transformer").model.encoder
    assert tiny == compose_train("experiment=demo", *PINNED).model.encoder
    for key in ("pos_enc", "use_conv", "macaron", "ffn_activation"):
        assert transformer[key] == big[key]
    for key in ("d_model", "num_blocks", "ffn_dim", "num_heads", "subsampling"):
        assert transformer[key] == tiny[key]


def waveform_probs(cfg) -> dict[str, float]:
    """Name -> probability of every waveform augmentation."""
    return {name: t["prob"] for name, t in OmegaConf.to_container(cfg.augment, resolve=True).items() if name != "specaug"}


def test_augment_full_arm_is_the_full_augment_config_and_none_turns_everything_off():
    full = arm_config("augment", "full", "noise_list=n.list", "rir_list=r.list")
    ref = compose_train("experiment=demo", "augment=full", "noise_list=n.list", "rir_list=r.list")
    assert OmegaConf.to_container(full.augment, resolve=True) == OmegaConf.to_container(ref.augment, resolve=True)
    none = arm_config("augment", "none")
    assert set(waveform_probs(none).values()) == {0.0} and none.augment.specaug.prob == 0.0


def test_augment_default_arm_differs_from_the_default_config_only_by_time_warp():
    lists = ("noise_list=n.list", "rir_list=r.list")
    arm = OmegaConf.to_container(arm_config("augment", "default", *lists).augment, resolve=True)
    ref = OmegaConf.to_container(compose_train("experiment=demo", "augment=default", *lists).augment, resolve=True)
    assert arm["specaug"].pop("time_warp") == 5 and ref["specaug"].pop("time_warp") == 0
    assert arm["specaug"] == ref["specaug"]
    assert arm == ref


def test_each_single_augmentation_arm_turns_on_only_its_own():
    full = waveform_probs(arm_config("augment", "full"))
    for arm in ("splice", "speed", "volume", "reverb", "noise"):
        probs = waveform_probs(arm_config("augment", arm))
        assert probs == {c: (full[c] if c == arm else 0.0) for c in full}
    assert waveform_probs(arm_config("augment", "specaug")) == {c: 0.0 for c in full}


def test_run_folders_are_root_name_arm_seed():
    cfg = compose_train("+ablation/posenc=abs", "+ablation=posenc", "seed=2", "ablation.root=/x", hydra_config=True)
    assert cfg.hydra.sweep.dir == "/x/posenc"
    assert cfg.hydra.sweep.subdir == "abs/seed2"
    assert cfg.hydra.run.dir == "/x/posenc/abs/seed2"


@pytest.mark.parametrize("name", SWEEPS + ["decoding"])
def test_a_job_decodes_with_the_threads_it_trains_with(name):
    # two 1-thread jobs on two cores whose evaluations each took both cores spent 40x longer in attention search
    for evaluate in ([], ["evaluate=conditions"]):
        assert compose_train(f"+ablation={name}", "threads=1", *evaluate).evaluate.threads == 1
    assert compose_train(f"+ablation={name}").evaluate.threads is None  # no threads given: the CPUs it may use
    assert compose_train(f"+ablation={name}", "threads=1", "evaluate.threads=2").evaluate.threads == 2


@pytest.mark.parametrize("name", SWEEPS)
def test_every_claim_names_arms_sets_modes_and_metrics_that_exist(name):
    import collect_ablation
    from asr.inference.modes import MODES
    from make_test_conditions import CONDITIONS

    cfg = compose_train(f"+ablation={name}")
    for claim in cfg.ablation.get("claims") or []:
        assert claim.claim and claim.expect in ("worse", "better")
        assert set(claim.arms) <= set(arms(name)), claim.claim
        splits = claim.split if OmegaConf.is_list(claim.split) else [claim.split]
        assert set(splits) <= {"test", "dev", *CONDITIONS}, claim.claim
        assert claim.mode in MODES and claim.get("baseline_mode", claim.mode) in MODES
        assert claim.get("metric", "cer") in collect_ablation.METRICS
        if claim.get("metric") == "focus":
            assert splits == ["test_rare"]  # the only set whose rows list focus characters


def test_the_four_idea_sweeps_state_their_claims():
    for name in ("posenc", "focal", "sampling", "augment"):
        assert compose_train(f"+ablation={name}").ablation.claims, name


def test_the_second_corpus_runs_the_demo_unchanged():
    demo, daily = (OmegaConf.to_container(compose_train(f"experiment={e}")) for e in ("demo", "demo_daily"))
    assert {k for k in demo if demo[k] != daily[k]} == {"exp_dir"} and daily["exp_dir"] == "exp/demo_daily"
