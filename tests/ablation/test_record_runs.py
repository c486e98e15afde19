"""tools/record_runs.py: a sweep's record (small files, per-utterance rows gzipped, no models) gives the collector
the same tables, intervals and verdicts as the sweep's own folder, and a recorded baseline serves a new sweep."""
from __future__ import annotations

import gzip
import json

import numpy as np

import collect_ablation as ca
import record_runs
from tests.ablation.test_collect_subsets import CHARS, SNRS, write_noisy_run

ARMS = {"none": {0.0: 0.6, 5.0: 0.4, 10.0: 0.2, None: 0.1},
        "noise_reverb": {0.0: 0.3, 5.0: 0.2, 10.0: 0.1, None: 0.05}}


def make_sweep(root, rng):
    refs = {f"test_noisy-u{i:02d}": "".join(rng.choice(list(CHARS), rng.integers(5, 15))) for i in range(32)}
    snr = {u: SNRS[i % len(SNRS)] for i, u in enumerate(refs)}
    for arm, rates in ARMS.items():
        for seed in (1, 2):
            hyps = write_noisy_run(root, arm, seed, refs, snr, rates, rng)
            run = root / arm / f"seed{seed}"
            for mode, h in hyps.items():
                (run / "decode" / "test_noisy" / mode / "text").write_text("".join(f"{u} {t}\n" for u, t in h.items()))
            (run / "checkpoints").mkdir()
            (run / "checkpoints" / "last.ckpt").write_bytes(b"\0" * 1000)  # a model: stays behind
            (run / "csv").mkdir()
            (run / "csv" / "metrics.csv").write_text("step,val/cer\n100,0.5\n200,0.25\n")
    failed = root / "none" / "seed3"
    failed.mkdir()
    (failed / "metrics.json").write_text(json.dumps({"status": "failed", "error": "RuntimeError: out of memory"}))
    return refs


def test_the_record_gives_the_same_tables_without_the_models(tmp_path, capsys):
    src, dest = tmp_path / "exp" / "augment", tmp_path / "records" / "augment"
    make_sweep(src, np.random.default_rng(0))
    recorded, skipped = record_runs.record(src, dest)
    assert len(recorded) == 4 and [(p.name, "out of memory" in why) for p, why in skipped] == [("seed3", True)]
    assert not list(dest.rglob("*.ckpt")) and not (dest / "none" / "seed3").exists()
    rows = dest / "none" / "seed1" / "decode" / "test_noisy" / "attention_rescoring" / "utterances.jsonl.gz"
    original = src / "none" / "seed1" / "decode" / "test_noisy" / "attention_rescoring" / "utterances.jsonl"
    assert gzip.decompress(rows.read_bytes()) == original.read_bytes()
    assert (dest / "noise_reverb" / "seed2" / "csv" / "metrics.csv").read_text() == \
        (src / "noise_reverb" / "seed2" / "csv" / "metrics.csv").read_text()

    # the collector on the record: every table, interval and verdict as on the runs' own folders (the failed run
    # is not in the record, so drop it from the source's listing before comparing)
    (src / "none" / "seed3" / "metrics.json").unlink()
    (src / "none" / "seed3").rmdir()
    texts = [ca.collect(d, "none", tmp_path / f"{i}.md", tmp_path / f"{i}.png", tmp_path / f"{i}c.png", resamples=300)
             for i, d in enumerate((src, dest))]
    assert "[" in texts[0] and texts[0].replace(str(src), "SWEEP") == texts[1].replace(str(dest), "SWEEP")


def write_data(data, audio):
    """A data folder whose manifests name audio files under ``audio`` by absolute path, as the recipe writes them."""
    (data / "conditions").mkdir(parents=True)
    audio.mkdir(parents=True, exist_ok=True)
    for name, ids in (("test.jsonl", "ab"), ("conditions/test_noisy.jsonl", "c")):
        rows = []
        for u in ids:
            (audio / f"{u}.wav").write_bytes(bytes(range(ord(u), ord(u) + 64)))
            rows.append(json.dumps({"id": u, "audio": str(audio / f"{u}.wav"), "duration": 1.0, "text": "你好"}))
        (data / name).write_text("\n".join(rows) + "\n")


def test_recording_again_gives_the_same_bytes_and_the_data_digests_check(tmp_path, capsys):
    src = tmp_path / "exp" / "augment"
    make_sweep(src, np.random.default_rng(1))
    data = tmp_path / "data"
    write_data(data, tmp_path / "corpus")
    first, second = tmp_path / "r1", tmp_path / "r2"
    record_runs.record(src, first, data)
    record_runs.record(src, second, data)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)  # gzip without a timestamp
    names = [line.split("  ")[1] for line in (first / "manifests.sha256").read_text().splitlines()]
    assert names == ["conditions/test_noisy.jsonl", "test.jsonl"]

    # the same corpus regenerated elsewhere (other absolute paths) checks; one changed sample in one file does not
    elsewhere = tmp_path / "elsewhere"
    write_data(elsewhere / "data", elsewhere / "corpus")
    assert record_runs.main(["--check", str(elsewhere / "data"), str(first)]) == 0
    wav = elsewhere / "corpus" / "b.wav"
    wav.write_bytes(wav.read_bytes()[:-1] + b"\0")
    capsys.readouterr()
    assert record_runs.check(elsewhere / "data", first) == ["test.jsonl: differs"]
    assert record_runs.main(["--check", str(elsewhere / "data"), str(first)]) == 1
    assert "test.jsonl: differs" in capsys.readouterr().err


def test_a_recorded_baseline_serves_a_new_sweep(tmp_path):
    """--baseline-from a record: the new arm's tables and intervals are those it gets against the baseline's own
    folder."""
    src = tmp_path / "exp" / "augment"
    make_sweep(src, np.random.default_rng(2))
    (src / "none" / "seed3" / "metrics.json").unlink()
    (src / "none" / "seed3").rmdir()
    record_runs.record(src / "none", tmp_path / "records" / "none")
    texts = [ca.collect(src / "noise_reverb", "none", tmp_path / f"{i}.md", tmp_path / f"{i}.png",
                        tmp_path / f"{i}c.png", resamples=300, baseline_from=base).replace(str(base), "BASE")
             for i, base in enumerate((src / "none", tmp_path / "records" / "none"))]
    assert "[" in texts[0] and texts[0] == texts[1]


def test_nothing_to_record_is_an_error_naming_the_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert record_runs.main([str(tmp_path / "empty"), str(tmp_path / "out")]) == 1
    assert "empty" in capsys.readouterr().err
