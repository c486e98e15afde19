"""Report noisy-student runs: how well CER-Hypo predicts the pseudo-labels' true error, and teacher vs students.

Usage:
    python tools/nst_report.py exp/nst/seed1 exp/nst/seed2 --ref data/demo/nst/unlabelled_text.jsonl \\
        --out-md exp/nst/report.md --out-png exp/nst/cer_hypo_vs_label.png

Reads, under each EXP (one run of recipes/aishell/run_nst.sh, i.e. one seed): ``iterK/pseudo/hyps.jsonl`` and
``iterK/filter/cer_hypo.jsonl`` (+ ``stats.json``) of every iteration, and the ``metrics.json`` of
``iter0/teacher``, ``iterK/student`` and ``iterK/student_nofilter`` (python -m asr.evaluate). With ``--ref`` (id,
text rows: the unlabelled audio's true transcripts, tools/make_nst_split.py) it also scores every pseudo-label:

* CER-Label: the CER of the pseudo-label (``label``) against the true text; per utterance for the scatter plot
  (CER-Hypo on x, CER-Label on y, one colour per EXP) and Pearson's r and Spearman's rho between the two
  (scipy.stats), and pooled over the kept and the dropped utterances (sum of errors / sum of reference characters);
  the same for the plain and the LM hypotheses over all utterances; the CER-Label a keep-best rule would keep at
  several percentages, ranked by CER-Hypo and by CER-Label itself (the oracle); kept share and CER-Label by SNR
  band where the unlabelled manifest has ``snr_db``; kept share and CER-Label by text domain where the references
  have ``domain`` (``make_nst_split.py --other-domain``).
* Test CER of the teacher and the students per EXP and mode, with mean ± sample standard deviation over the EXPs,
  and paired bootstraps over utterances (tools/collect_ablation.py's: errors averaged over the EXPs) of
  student − teacher and filtered − unfiltered student.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import stats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.data.manifest import UNLABELLED_KEYS, Manifest  # noqa: E402
from asr.data.text import normalize_text  # noqa: E402
from asr.decoding.cer import ErrorStats, compute_cer  # noqa: E402
from asr.evaluate import METRICS_FILE, read_metrics  # noqa: E402
from asr.nst.filter import select  # noqa: E402
from asr.utils.io import atomic_path, atomic_write, read_jsonl  # noqa: E402
from collect_ablation import Run, paired_bootstrap, paired_errors  # noqa: E402

ROLES = {"teacher": "teacher", "student": "student (filtered)", "student_nofilter": "student (unfiltered)"}
SNR_BANDS = ((None, None, "clean"), (0, 5, "0-5 dB"), (5, 10, "5-10 dB"), (10, 15, "10-15 dB"), (15, 20.01, "15-20 dB"))


def iterations(exp: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in exp.glob("iter*") if (m := re.fullmatch(r"iter(\d+)", p.name)) and
                  int(m.group(1)) > 0)


def pooled(utts: dict, ids: list[str]) -> float | None:
    """CER of a set of utterances: their errors over their reference characters."""
    total = sum((utts[u] for u in ids), ErrorStats())
    return total.cer if ids else None


def pseudo_label_rows(exp: Path, k: int, refs: dict[str, str] | None,
                      domains: dict[str, str] | None = None) -> dict | None:
    """One iteration's pseudo-label facts (CER-Label only with references)."""
    it = exp / f"iter{k}"
    if not (it / "filter" / "cer_hypo.jsonl").exists():
        return None
    hyps = {h["id"]: h for h in read_jsonl(it / "pseudo" / "hyps.jsonl")}
    scored = list(read_jsonl(it / "filter" / "cer_hypo.jsonl"))
    summary = read_metrics(it / "pseudo" / "summary.json")
    fact = {"exp": exp, "iteration": k, "stats": read_metrics(it / "filter" / "stats.json"), "summary": summary,
            "ids": [r["id"] for r in scored], "cer_hypo": np.array([r["cer_hypo"] for r in scored]),
            "kept": {r["id"] for r in scored if r["kept"]}}
    if refs is None:
        return fact
    if missing := [u for u in fact["ids"] if u not in refs]:
        raise ValueError(f"--ref has no text for {len(missing)} pseudo-labelled utterances (e.g. {missing[:3]})")
    truth = {u: normalize_text(refs[u]) for u in fact["ids"]}
    for key in ("label", "plain", "lm"):
        fact[key] = {u.utt_id: u.stats for u in compute_cer(truth, {u: hyps[u][key] for u in fact["ids"]}).utts}
    fact["cer_label"] = np.array([fact["label"][u].cer for u in fact["ids"]])
    fact["pearson"] = stats.pearsonr(fact["cer_hypo"], fact["cer_label"])
    fact["spearman"] = stats.spearmanr(fact["cer_hypo"], fact["cer_label"])
    snr = {row["id"]: row.get("snr_db") for row in Manifest(summary["manifest"], required=UNLABELLED_KEYS)} \
        if Path(summary["manifest"]).exists() else {}
    fact["snr"] = snr if any(v is not None for v in snr.values()) else {}
    fact["domain"] = domains if domains and len(set(domains.values())) > 1 else {}
    return fact


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def pseudo_label_table(facts: list[dict]) -> list[str]:
    with_ref = all("cer_label" in f for f in facts)
    lines = ["| run | iter | pseudo-labelled | rejected | rule | kept (h) | dropped (h) |" +
             (" CER-Label plain / LM / label | Pearson r | Spearman rho | CER-Label kept | CER-Label dropped |"
              if with_ref else ""),
             "|---|---|---|---|---|---|---|" + ("---|---|---|---|---|" if with_ref else "")]
    for f in facts:
        s, kept = f["stats"], [u for u in f["ids"] if u in f["kept"]]
        dropped = [u for u in f["ids"] if u not in f["kept"]]
        row = (f"| {f['exp'].name} | {f['iteration']} | {s['pseudo_labelled']} | {f['summary']['rejected']} | "
               f"{s['rule']} | {s['kept']['utterances']} ({s['kept']['hours']:.2f}) | "
               f"{s['dropped']['utterances']} ({s['dropped']['hours']:.2f}) |")
        if with_ref:
            row += (f" {pct(pooled(f['plain'], f['ids']))} / {pct(pooled(f['lm'], f['ids']))} / "
                    f"{pct(pooled(f['label'], f['ids']))} | {f['pearson'][0]:.3f} | {f['spearman'][0]:.3f} | "
                    f"{pct(pooled(f['label'], kept))} | {pct(pooled(f['label'], dropped))} |")
        lines.append(row)
    return lines


def snr_table(facts: list[dict]) -> list[str]:
    facts = [f for f in facts if f.get("snr")]
    if not facts:
        return []
    lines = ["| run | iter | " + " | ".join(b[2] for b in SNR_BANDS) + " |", "|---|---|" + "---|" * len(SNR_BANDS)]
    for f in facts:
        cells = []
        for low, high, _ in SNR_BANDS:
            ids = [u for u in f["ids"] if (f["snr"].get(u) is None if low is None else
                                           f["snr"].get(u) is not None and low <= f["snr"][u] < high)]
            kept = [u for u in ids if u in f["kept"]]
            cells.append(f"{len(kept)}/{len(ids)} kept, CER-Label {pct(pooled(f['label'], ids))}" if ids else "–")
        lines.append(f"| {f['exp'].name} | {f['iteration']} | " + " | ".join(cells) + " |")
    return lines


def domain_table(facts: list[dict]) -> list[str]:
    """Kept share and CER-Label per text domain of the unlabelled audio (the corpus's own and another one)."""
    facts = [f for f in facts if f.get("domain")]
    if not facts:
        return []
    names = sorted({d for f in facts for d in f["domain"].values()})
    lines = ["| run | iter | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for f in facts:
        cells = []
        for name in names:
            ids = [u for u in f["ids"] if f["domain"].get(u) == name]
            kept = [u for u in ids if u in f["kept"]]
            cells.append(f"{len(kept)}/{len(ids)} kept; CER-Label all {pct(pooled(f['label'], ids))}, kept "
                         f"{pct(pooled(f['label'], kept))}" if ids else "–")
        lines.append(f"| {f['exp'].name} | {f['iteration']} | " + " | ".join(cells) + " |")
    return lines


def retention_table(facts: list[dict], percents=(10, 20, 30, 50, 70, 100)) -> list[str]:
    """CER-Label of the pseudo-labels the filter would keep at each keep-best percentage (no student trained), with
    the oracle ranking (by CER-Label itself) beside it: how much of the possible gain the CER-Hypo ranking gets."""
    facts = [f for f in facts if "cer_label" in f]
    if not facts:
        return []
    lines = ["| run | iter | ranking | " + " | ".join(f"best {p} %" for p in percents) + " |",
             "|---|---|---|" + "---|" * len(percents)]
    for f in facts:
        for name, key in (("CER-Hypo", f["cer_hypo"]), ("oracle (CER-Label)", f["cer_label"])):
            scores = dict(zip(f["ids"], key.tolist()))
            cells = [pct(pooled(f["label"], select(scores, keep_best=p).kept)) for p in percents]
            lines.append(f"| {f['exp'].name} | {f['iteration']} | {name} | " + " | ".join(cells) + " |")
    return lines


def scatter(facts: list[dict], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for f in facts:
        thr = f["stats"].get("threshold")
        ax.scatter(100 * f["cer_hypo"], 100 * f["cer_label"], s=4, alpha=0.35,
                   label=f"{f['exp'].name} iter{f['iteration']}: r={f['pearson'][0]:.2f}, rho={f['spearman'][0]:.2f}")
        if thr is not None:
            ax.axvline(100 * thr, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("CER-Hypo (%): plain vs LM hypothesis")
    ax.set_ylabel("CER-Label (%): pseudo-label vs true text")
    ax.set_xlim(left=-2)
    ax.set_ylim(bottom=-2)
    ax.legend(fontsize=7, markerscale=3)
    ax.set_title("Pseudo-labels of the unlabelled set (dashed: filter threshold)", fontsize=9)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def model_runs(exps: list[Path]) -> dict[tuple[int, str], list[Run]]:
    """(iteration, role) -> the finished runs of every EXP."""
    runs: dict[tuple[int, str], list[Run]] = {}
    for exp in exps:
        places = [(0, "teacher", exp / "iter0" / "teacher")] + [
            (k, role, exp / f"iter{k}" / role) for k in iterations(exp) for role in ("student", "student_nofilter")]
        for k, role, path in places:
            if (path / METRICS_FILE).exists():
                m = read_metrics(path / METRICS_FILE)
                if m.get("status") == "ok":
                    runs.setdefault((k, role), []).append(Run(role, m.get("seed"), path, "ok", m))
    return runs


def model_table(runs: dict[tuple[int, str], list[Run]]) -> list[str]:
    if not runs:
        return []
    first = next(iter(runs.values()))[0].metrics["cer"]
    sets = [s for s in first if s != "dev"] + ["dev"]
    modes = list(first["test"])
    cols = [(s, m) for s in sets for m in modes]
    lines = ["| model | seeds | " + " | ".join(f"{s} {m}" for s, m in cols) + " |", "|---|---|" + "---|" * len(cols)]
    for (k, role), rs in sorted(runs.items()):
        cells = []
        for s, m in cols:
            v = [r.metrics["cer"].get(s, {}).get(m) for r in rs]
            v = [x for x in v if x is not None]
            mean = statistics.mean(v) if v else None
            std = f" ± {100 * statistics.stdev(v):.2f}" if len(v) > 1 else ""
            cells.append(f"{pct(mean)}{std} ({', '.join(pct(x) for x in v)})")
        name = ROLES[role] if role == "teacher" else f"iter {k} {ROLES[role]}"
        lines.append(f"| {name} | {', '.join(str(r.seed) for r in rs)} | " + " | ".join(cells) + " |")
    return lines


def comparisons(runs: dict[tuple[int, str], list[Run]]) -> list[str]:
    pairs = []
    for (k, role), rs in sorted(runs.items()):
        if role == "student":
            before = runs.get((k - 1, "teacher" if k == 1 else "student"))
            if before:
                pairs.append((f"iter {k} student − its teacher", rs, before))
            if (k, "student_nofilter") in runs:
                pairs.append((f"iter {k} filtered − unfiltered student", rs, runs[(k, "student_nofilter")]))
    if not pairs:
        return []
    first = next(iter(runs.values()))[0].metrics["cer"]
    lines = ["| comparison | set | mode | Δ CER (points) | 95 % CI | p |", "|---|---|---|---|---|---|"]
    for name, arm, base in pairs:
        for s in [s for s in first if s != "dev"]:
            for m in first[s]:
                paired = paired_errors(arm, base, s, m, "cer")
                boot = paired_bootstrap(*paired) if paired else None
                if boot:
                    lines.append(f"| {name} | {s} | {m} | {100 * boot.delta:+.2f} | [{100 * boot.low:+.2f}, "
                                 f"{100 * boot.high:+.2f}] | {boot.p_text} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exps", nargs="+", type=Path, help="run_nst.sh experiment folders (one per seed)")
    p.add_argument("--ref", type=Path, help="id, text rows: the unlabelled audio's true transcripts")
    p.add_argument("--out-md", type=Path, required=True)
    p.add_argument("--out-png", type=Path, help="the scatter plot (needs --ref)")
    args = p.parse_args(argv)
    ref_rows = list(read_jsonl(args.ref)) if args.ref else []
    refs = {r["id"]: r["text"] for r in ref_rows} if args.ref else None
    domains = {r["id"]: r["domain"] for r in ref_rows if "domain" in r}
    facts = [f for exp in args.exps for k in iterations(exp) if (f := pseudo_label_rows(exp, k, refs, domains))]
    runs = model_runs(args.exps)
    md = ["## Pseudo-labels", ""] + pseudo_label_table(facts)
    if retention := retention_table(facts):
        md += ["", "CER-Label (%) of the pseudo-labels kept by a keep-best rule (ties in manifest order), by CER-Hypo "
               "and by the oracle ranking:", ""] + retention
    if snr := snr_table(facts):
        md += ["", "Kept pseudo-labels and CER-Label (%) by SNR band of the unlabelled audio:", ""] + snr
    if by_domain := domain_table(facts):
        md += ["", "Kept pseudo-labels and CER-Label (%) by text domain of the unlabelled audio (pooled over all "
               "of the domain's utterances and over the kept ones):", ""] + by_domain
    md += ["", "## Test CER (%): mean ± sample std over seeds (each seed)", ""] + model_table(runs)
    if comp := comparisons(runs):
        md += ["", "Paired bootstrap over utterances (errors averaged over seeds; 10,000 resamples):", ""] + comp
    with atomic_write(args.out_md) as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    if args.out_png and refs is not None and facts:
        scatter(facts, args.out_png)
        print(f"scatter plot -> {args.out_png}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, OSError) as e:
        sys.exit(f"nst_report: {e}")
