"""Per-SNR tables of test_noisy: the collector's CER of each subset (from per-utterance rows of the whole set, as
asr/decode.py writes them) equals the CER computed afresh on that subset's references and hypotheses alone."""
from __future__ import annotations

import json

import numpy as np
import pytest

import collect_ablation as ca
from asr.decoding.cer import compute_cer, per_utterance

CHARS = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可也你"
SNRS = [0.0, 5.0, 10.0, None]  # None: reverberation only
MODES = ("ctc_greedy_search", "attention_rescoring")


def corrupt(rng: np.random.Generator, text: str, rate: float) -> str:
    """Each character dropped, replaced or doubled with probability ``rate`` (each a third of it)."""
    out = []
    for c in text:
        r = rng.random()
        out.append("" if r < rate / 3 else rng.choice(list(CHARS)) if r < 2 * rate / 3 else c + c if r < rate else c)
    return "".join(out)


def write_noisy_run(root, arm: str, seed: int, refs: dict, snr: dict, rates: dict[float | None, float], rng):
    """A finished run that decoded test_noisy in MODES, noisier SNRs with more errors; returns mode -> hypotheses."""
    run = root / arm / f"seed{seed}"
    hyps, cer, counts = {}, {}, {}
    for mode in MODES:
        hyps[mode] = {u: corrupt(rng, ref, rates[snr[u]]) for u, ref in refs.items()}
        report = compute_cer(refs, hyps[mode])
        out = run / "decode" / "test_noisy" / mode
        out.mkdir(parents=True)
        rows = per_utterance(report, fields={u: {"snr_db": snr[u]} for u in refs})  # what asr/decode.py writes
        (out / "utterances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        t = report.total
        cer[mode] = t.cer
        counts[mode] = {"substitutions": t.substitutions, "deletions": t.deletions, "insertions": t.insertions,
                        "ref_chars": t.ref_len}
    (run / "metrics.json").write_text(json.dumps({"status": "ok", "name": "augment", "arm": arm, "seed": seed,
                                                  "cer": {"test_noisy": cer}, "counts": {"test_noisy": counts}}))
    return hyps


def test_per_snr_cer_equals_the_cer_of_the_subset_alone(tmp_path):
    rng = np.random.default_rng(0)
    refs = {f"test_noisy-u{i:02d}": "".join(rng.choice(list(CHARS), rng.integers(5, 15))) for i in range(40)}
    snr = {u: SNRS[i % len(SNRS)] for i, u in enumerate(refs)}
    arms = {"none": {0.0: 0.6, 5.0: 0.4, 10.0: 0.2, None: 0.1},
            "noise_reverb": {0.0: 0.3, 5.0: 0.2, 10.0: 0.1, None: 0.05}}
    hyps = {(arm, seed): write_noisy_run(tmp_path, arm, seed, refs, snr, rates, rng)
            for arm, rates in arms.items() for seed in (1, 2)}
    runs = ca.find_runs(tmp_path)
    subsets = ["test_noisy@snr_db=0.0", "test_noisy@snr_db=5.0", "test_noisy@snr_db=10.0", "test_noisy@snr_db=null"]
    assert ca.views(runs) == [("test_noisy", "cer")] + [(s, "cer") for s in subsets]
    _, table = ca.summarize(runs, list(arms), "none", resamples=200)
    for split, value in zip(subsets, SNRS):
        ids = [u for u in refs if snr[u] == value]
        for arm in arms:
            for mode in MODES:
                direct = [compute_cer({u: refs[u] for u in ids}, hyps[arm, seed][mode]).total.cer for seed in (1, 2)]
                assert table[split, "cer"][arm][mode].values == pytest.approx(direct, abs=1e-12), (split, arm, mode)
        cell = table[split, "cer"]["noise_reverb"]["attention_rescoring"]
        assert cell.boot.utterances == len(ids) and cell.boot.delta == pytest.approx(cell.diff)
    # the whole set is still the whole set; the tables are titled by SNR
    for arm in arms:
        assert table["test_noisy", "cer"][arm]["ctc_greedy_search"].values == pytest.approx(
            [compute_cer(refs, hyps[arm, seed]["ctc_greedy_search"]).total.cer for seed in (1, 2)])
    text = ca.collect(tmp_path, "none", tmp_path / "t.md", tmp_path / "t.png", tmp_path / "c.png", resamples=200)
    for title in ("test_noisy, 0 dB SNR", "test_noisy, 5 dB SNR", "test_noisy, 10 dB SNR",
                  "test_noisy, reverberation only (no noise)"):
        assert f"\n## {title}\n" in text


def test_a_claim_can_name_one_snr(tmp_path):
    rng = np.random.default_rng(1)
    refs = {f"u{i:02d}": "".join(rng.choice(list(CHARS), 10)) for i in range(24)}
    snr = {u: SNRS[i % len(SNRS)] for i, u in enumerate(refs)}
    for seed in (1, 2):  # the arm is much worse at 0 dB only
        write_noisy_run(tmp_path, "none", seed, refs, snr, {0.0: 0.1, 5.0: 0.1, 10.0: 0.1, None: 0.1}, rng)
        write_noisy_run(tmp_path, "speed", seed, refs, snr, {0.0: 0.9, 5.0: 0.1, 10.0: 0.1, None: 0.1}, rng)
    claim = {"claim": "noise training helps at 0 dB", "arms": ["speed"], "split": "test_noisy@snr_db=0.0",
             "mode": "attention_rescoring", "metric": "cer", "expect": "worse"}
    (v,) = ca.judge(ca.find_runs(tmp_path), [claim], "none", resamples=500, negligible=0.1)
    assert v.verdict == "replicated" and "over 6 utterances" in v.because
