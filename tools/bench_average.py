"""Peak memory of checkpoint averaging: the streaming average of asr.average against loading every checkpoint.

Usage:
    .venv/bin/python tools/bench_average.py --num 20 --work /tmp/bench_average     [--vocab 4233]

Writes ``--num`` Lightning-style checkpoints of the AISHELL-size model (conf/model/conformer.yaml, random weights,
Adam's two moment buffers as optimizer state, as a real checkpoint carries) into ``--work``, then averages them
in two fresh processes and prints each one's peak resident memory (``ru_maxrss``) and time:

* ``all-at-once``: every checkpoint loaded in full (``torch.load(weights_only=True)``, no mmap), then averaged:
  what asr.average did before;
* ``streaming``: :func:`asr.average.select` + :func:`asr.average.average_checkpoints` (memory-mapped, one file
  at a time, running float64 sum).

Both results are compared (max |difference|). The files are deleted at the end unless ``--keep``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import torch
from asr.average import average_checkpoints, average_states, model_state, select
work, method = Path(sys.argv[1]), sys.argv[2]
start = time.perf_counter()
if method == "streaming":
    state = average_checkpoints([c.path for c in select(work, 10**6, "last")])
else:
    paths = sorted(p for p in work.glob("last-*.ckpt"))
    ckpts = [torch.load(p, map_location="cpu", weights_only=True) for p in paths]
    state = average_states([model_state(c) for c in ckpts])
seconds = time.perf_counter() - start
torch.save(state, work / f"avg_{method}.pt")
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": seconds}))
"""


def write_checkpoints(work: Path, num: int, vocab: int) -> tuple[int, float]:
    """``num`` checkpoints of the AISHELL-size model; returns (parameters, MB per file)."""
    import torch
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from asr.model.registry import build_model

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(overrides=["+model=conformer", "+loss@model.att_loss=label_smoothing", f"model.vocab_size={vocab}"])
    model = build_model(OmegaConf.to_container(cfg.model, resolve=True), "conf/model/conformer.yaml")
    work.mkdir(parents=True, exist_ok=True)
    params = sum(p.numel() for p in model.parameters())
    for i in range(num):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 1e-3)
        state = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
        optimizer = {"state": {j: {"exp_avg": torch.randn_like(p), "exp_avg_sq": torch.rand_like(p)}
                               for j, p in enumerate(model.parameters())}, "param_groups": [{"lr": 1e-3}]}
        path = work / f"last-epoch{i}-step{1000 * (i + 1)}.ckpt"
        torch.save({"state_dict": state, "optimizer_states": [optimizer], "global_step": 1000 * (i + 1),
                    "asr": {"val_cer": 0.1}}, path)
        print(f"  wrote {path.name} ({path.stat().st_size / 1e6:.0f} MB)", flush=True)
    return params, path.stat().st_size / 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=20)
    p.add_argument("--vocab", type=int, default=4233)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    params, mb = write_checkpoints(args.work, args.num, args.vocab)
    print(f"{args.num} checkpoints of {params / 1e6:.1f}M parameters, {mb:.0f} MB each "
          f"(fp32 weights {params * 4 / 1e6:.0f} MB)")
    results = {}
    for method in ("streaming", "all-at-once"):
        r = subprocess.run([sys.executable, "-c", CHILD, str(args.work), method], capture_output=True, text=True, cwd=ROOT)
        if r.returncode != 0:
            print(f"{method}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
            return 1
        results[method] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"  {method:12} peak RSS {results[method]['peak_rss_mb']:8.0f} MB "
              f"({results[method]['peak_rss_mb'] / (params * 4 / 1e6):.1f} x the fp32 weights), "
              f"{results[method]['seconds']:.1f} s", flush=True)
    import torch

    a, b = (torch.load(args.work / f"avg_{m}.pt") for m in ("streaming", "all-at-once"))
    diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    print(f"  max |streaming - all-at-once| = {diff:.2e}; peak RSS ratio all-at-once / streaming = "
          f"{results['all-at-once']['peak_rss_mb'] / results['streaming']['peak_rss_mb']:.1f}")
    if not args.keep:
        shutil.rmtree(args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
