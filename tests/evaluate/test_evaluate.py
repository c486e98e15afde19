"""asr/evaluate.py: what a finished run is, a failure's metrics.json, and evaluation against plain decoding."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from asr import evaluate
from asr.average import read_checkpoint
from conftest import TINY_STEPS


@pytest.mark.parametrize("content, expected", [
    ({"status": "ok"}, True), ({"status": "failed", "error": "x"}, False), ({"status": "interrupted"}, False),
    (None, False), ("not json", False)])
def test_only_a_run_with_status_ok_is_skipped(tmp_path, capsys, content, expected):
    if content is not None:
        (tmp_path / "metrics.json").write_text(content if isinstance(content, str) else json.dumps(content))
    assert evaluate.finished(tmp_path) is expected
    assert ("skipping" in capsys.readouterr().out) is expected


def test_a_failure_is_recorded_with_its_error_and_raised_again(tmp_path):
    exp = tmp_path / "arm" / "seed3"
    exp.mkdir(parents=True)
    cfg = OmegaConf.create({"exp_dir": str(exp), "seed": 3, "ablation": {"name": "posenc", "arm": "${oc.env:NOPE}"}})
    with pytest.raises(ValueError, match="bad manifest"), evaluate.recorded(exp, cfg):
        raise ValueError("bad manifest data/x.jsonl")
    m = json.loads((exp / "metrics.json").read_text())
    assert m["status"] == "failed" and m["error"] == "ValueError: bad manifest data/x.jsonl"
    # an interpolation that cannot be resolved outside the run falls back to the folder's name
    assert m["arm"] == "arm" and m["seed"] == 3 and m["name"] == "posenc"
    assert "Traceback" in m["traceback"] and m["steps"] is None
    assert not evaluate.finished(exp)


def test_evaluation_records_what_decoding_and_the_checkpoint_say(tiny_run, tmp_path):
    exp = tmp_path / "run"
    shutil.copytree(tiny_run, exp)
    modes = ["ctc_greedy_search", "attention_rescoring"]
    r = subprocess.run([sys.executable, "-m", "asr.evaluate", f"exp_dir={exp}", f"evaluate.modes=[{','.join(modes)}]",
                        "evaluate.threads=1", "+evaluate.test_sets.again=test.jsonl"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((exp / "metrics.json").read_text())
    cfg = OmegaConf.load(exp / ".hydra" / "config.yaml")
    assert m["status"] == "ok" and m["config"] == ".hydra/config.yaml" and m["seed"] == cfg.seed
    # the CERs are those a plain decode of the averaged model file gives
    for split in ("dev", "test"):
        out = tmp_path / "decode" / split
        d = subprocess.run([sys.executable, "-m", "asr.decode", f"model={exp / 'model.safetensors'}",
                            f"manifest={cfg.data_dir}/{split}.jsonl", f"out_dir={out}", f"modes=[{','.join(modes)}]", "progress=false", "threads=1"],
                           capture_output=True, text=True)
        assert d.returncode == 0, d.stderr[-3000:]
        for mode in modes:
            summary = json.loads((out / mode / "summary.json").read_text())
            assert m["cer"][split][mode] == summary["cer"]
            assert m["counts"][split][mode] == {k: summary[k] for k in evaluate.COUNT_KEYS if k in summary}
    # a test set of evaluate.test_sets (relative: from the run's data_dir) is decoded and recorded like test
    assert m["cer"]["again"] == m["cer"]["test"] and m["counts"]["again"] == m["counts"]["test"]
    for mode in modes:
        assert (exp / "decode" / "again" / mode / "utterances.jsonl").read_text() == \
            (exp / "decode" / "test" / mode / "utterances.jsonl").read_text()
    # steps and time come from the last checkpoint (Lightning's Timer), throughput from the ThroughputMonitor's log
    last = read_checkpoint(exp / "checkpoints" / "last.ckpt")
    assert m["steps"] == last["global_step"] == TINY_STEPS
    assert 0 < m["train_seconds"] and m["audio_seconds_per_second"] > 0
    assert [a["step"] for a in m["averaged"]] == [TINY_STEPS]


def test_test_sets_resolve_from_the_run_data_dir_and_a_missing_one_is_named(tmp_path):
    (tmp_path / "conditions").mkdir()
    (tmp_path / "conditions" / "test_long.jsonl").write_text("")
    cfg = OmegaConf.create({"data_dir": str(tmp_path), "data": {"val_manifest": "${data_dir}/dev.jsonl",
                                                                 "test_manifest": "${data_dir}/test.jsonl"}})
    settings = OmegaConf.create({"test_sets": {"test_long": "conditions/test_long.jsonl",
                                               "elsewhere": str(tmp_path / "conditions" / "test_long.jsonl")}})
    sets = evaluate.evaluation_sets(settings, cfg)
    assert list(sets) == ["dev", "test", "test_long", "elsewhere"]
    assert sets["test_long"] == sets["elsewhere"] == tmp_path / "conditions" / "test_long.jsonl"
    settings.test_sets.test_rare = "conditions/test_rare.jsonl"
    with pytest.raises(ValueError, match="test_rare: .*conditions/test_rare.jsonl"):
        evaluate.evaluation_sets(settings, cfg)
    with pytest.raises(ValueError, match="'test' is the run's own test set"):
        evaluate.evaluation_sets(OmegaConf.create({"test_sets": {"test": "x.jsonl"}}), cfg)


def test_a_decoding_job_evaluates_the_given_model_with_its_search_settings(tiny_run, tiny_model_file, tmp_path):
    from asr.decode import decode_manifest
    from asr.inference.recognizer import Recognizer

    cfg = OmegaConf.load(tiny_run / ".hydra" / "config.yaml")
    modes, search = ["ctc_greedy_search", "attention"], {"beam": 2, "attention_length_bonus": 1.5}
    settings = OmegaConf.create({"modes": modes, "test_sets": {}, "average_num": 1, "device": "cpu", "threads": 1,
                                 "search": search})
    exp = tmp_path / "ctcw0.3_lb1.5" / "seed1"
    exp.mkdir(parents=True)
    m = evaluate.evaluate_run(exp, settings, cfg, model_file=tiny_model_file)
    assert m["averaged"] is None and m["model_from"] == str(tiny_model_file) and m["steps"] is None
    assert not (exp / "model.safetensors").exists()  # nothing averaged: the job's folder holds decodes only
    assert json.loads((exp / "metrics.json").read_text())["arm"] == "ctcw0.3_lb1.5"
    rec = Recognizer.from_model_file(tiny_model_file, "cpu", **search)
    for split, manifest in evaluate.evaluation_sets(settings, cfg).items():
        plain = decode_manifest(rec, manifest, tmp_path / "plain" / split, modes, progress=False)
        for mode in modes:
            assert m["cer"][split][mode] == plain[mode]["cer"]
            recorded = json.loads((exp / "decode" / split / mode / "summary.json").read_text())
            assert recorded["settings"]["attention_length_bonus"] == 1.5


def test_an_interrupted_evaluation_keeps_the_sets_it_finished_and_only_those(tiny_run, tiny_model_file, tmp_path,
                                                                             monkeypatch):
    """A rerun decodes again exactly the sets without a complete decode of this model (by content), manifest and
    search; the record is the one an uninterrupted evaluation writes."""
    cfg = OmegaConf.load(tiny_run / ".hydra" / "config.yaml")
    modes = ["ctc_greedy_search", "attention_rescoring"]
    settings = OmegaConf.create({"modes": modes, "test_sets": {"again": "test.jsonl"}, "average_num": 1,
                                 "device": "cpu", "threads": 1, "search": {"beam": 2}})
    exp = tmp_path / "arm" / "seed1"
    exp.mkdir(parents=True)
    decoded = []
    real = evaluate.decode_manifest

    def counting(rec, manifest, out_dir, *args, **kwargs):
        decoded.append(out_dir.name)
        return real(rec, manifest, out_dir, *args, **kwargs)

    monkeypatch.setattr(evaluate, "decode_manifest", counting)
    first = evaluate.evaluate_run(exp, settings, cfg, model_file=tiny_model_file)
    assert decoded == ["dev", "test", "again"]

    def rerun():
        decoded.clear()
        return evaluate.evaluate_run(exp, settings, cfg, model_file=tiny_model_file)

    # killed while writing test's second mode: test alone is decoded again, in every mode
    (exp / "decode" / "test" / modes[1] / "summary.json").unlink()
    again = rerun()
    assert decoded == ["test"] and again["cer"] == first["cer"] and again["counts"] == first["counts"]
    # a summary of another model (its digest) is not kept
    path = exp / "decode" / "dev" / modes[0] / "summary.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({**summary, "model_sha256": "0" * 64}))
    assert rerun()["cer"] == first["cer"] and decoded == ["dev"]
    # nor one of other search settings: every set is decoded again
    settings.search.beam = 3
    rerun()
    assert decoded == ["dev", "test", "again"]
