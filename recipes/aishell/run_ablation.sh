#!/usr/bin/env bash
# One ablation sweep end to end on the demo data: train every arm x seed (Hydra multirun of conf/ablation/NAME.yaml),
# then collect the runs into a table and two plots. Run from anywhere; it works in recipes/aishell/.
#
# Usage:
#   bash run_ablation.sh NAME [Hydra overrides ...]      NAME: focal | posenc | sampling | augment | encoder | decoding
#   bash run_ablation.sh focal                           # 3 arms x 2 seeds x 450 steps (~3 minutes each on CPU)
#   bash run_ablation.sh focal trainer.max_steps=1500 trainer.max_time=null seed=1,2,3
#   bash run_ablation.sh augment '+ablation/augment=none,speed,specaug,default'     # a subset of the arms
#   bash run_ablation.sh posenc hydra/launcher=joblib hydra.launcher.n_jobs=2 threads=1   # 2 processes at a time
#                                                        # (needs the hydra-joblib-launcher package)
# Runs go to exp/ablation/NAME/ARM/seedS (ablation.root=DIR to change), each with its metrics.json; the table and
# plots to docs/ablation_NAME.md, docs/ablation_NAME.png and docs/ablation_NAME_curves.png (DOCS=DIR to change), and
# ABLATIONS.md gathers every sweep collected in DOCS.
# Data: data/demo, made by `run.sh --demo` stages 0-2 when missing (data_dir=DIR to use other prepared data).
# Rerunning skips the runs whose metrics.json says "ok" and resumes the others; a failed run is reported in the
# table with its error. The script exits with the sweep's status after collecting.
# Sweeps whose baselines are the same config share one set of baseline runs: list only the other arms and set
# BASELINE_FROM=DIR (e.g. exp/ablation/posenc/rel) for the collector (ABLATIONS.md, "How the sweeps run").
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
PY=${PYTHON:-python}
DOCS=${DOCS:-docs}

[ $# -ge 1 ] || { echo "usage: $0 NAME [Hydra overrides ...] (NAME: one of $(cd "$ROOT/conf/ablation" && ls *.yaml | grep -v '^base' | sed 's/\.yaml$//' | tr '\n' ' '))" >&2; exit 2; }
name=$1; shift
if [ ! -f "$ROOT/conf/ablation/$name.yaml" ] || [ "$name" = base ]; then
  echo "no ablation sweep '$name' (conf/ablation/$name.yaml); sweeps: $(cd "$ROOT/conf/ablation" && ls *.yaml | grep -v '^base' | sed 's/\.yaml$//' | tr '\n' ' ')" >&2
  exit 2
fi
data=data/demo; root=exp/ablation
for arg in "$@"; do
  case "$arg" in
    data_dir=*) data=${arg#data_dir=} ;;
    ablation.root=*) root=${arg#ablation.root=} ;;
  esac
done

if [ ! -f "$data/cmvn.json" ]; then
  if [ "$data" = data/demo ]; then
    echo "== demo data missing: run.sh --demo, stages 0-2"
    PYTHON=$PY bash run.sh --demo --stop-stage 2
  else
    echo "$data/cmvn.json not found: prepare the data first (run.sh stages 0-2)" >&2; exit 1
  fi
fi

echo "== ablation $name: the sweep's training budget"
$PY - "$ROOT/conf" "$name" "data_dir=$data" "ablation.root=$root" "$@" <<'EOF' || echo "  (could not compute the budget; the sweep itself will say what is wrong)"
import math
import sys

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

conf, name, *overrides = sys.argv[1:]
parser = OverridesParser.create()
given = parser.parse_overrides(overrides)
with initialize_config_dir(config_dir=conf, version_base="1.3"):
    cfg = compose("train", overrides=[f"+ablation={name}"] + [o.input_line for o in given if not o.is_sweep_override()],
                  return_hydra_config=True)
counts = {}  # swept key -> number of values; the command line replaces the sweep file's params
for o in parser.parse_overrides([f"{k}={v}" for k, v in (cfg.hydra.sweeper.params or {}).items()]) + given:
    counts[o.get_key_element()] = len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1
runs = math.prod(counts.values())
swept = " x ".join(f"{n} {k.lstrip('+')}" for k, n in counts.items() if n > 1)
print(f"  {swept} = {runs} runs" if swept else "  1 run")
if cfg.ablation.get("model_from"):  # a decoding sweep (asr/sweep.py): no training
    print(f"  no training: every run decodes {cfg.ablation.model_from} (with its seed) in its own search settings")
    sys.exit(0)
max_time = cfg.trainer.max_time
if cfg.trainer.max_steps and cfg.trainer.max_steps > 0:
    print(f"  every run trains {cfg.trainer.max_steps} optimizer steps (trainer.max_steps), stopped at {max_time} at most")
if max_time is None:
    print("  trainer.max_time is null: no time budget (the runs stop at max_epochs / max_steps)")
else:
    seconds = sum(int(x) * s for x, s in zip(str(max_time).split(":"), (86400, 3600, 60, 1)))
    print(f"  {runs} runs x {max_time} (trainer.max_time) = {runs * seconds / 60:.0f} minutes of training at most,"
          " plus start-up, averaging and decoding for each run")
    jobs = cfg.hydra.launcher.get("n_jobs")
    if jobs and jobs > 1:
        print(f"  {jobs} runs at a time: about {runs * seconds / 60 / jobs:.0f} minutes of wall time")
EOF

echo "== ablation $name: training (decoding only, for a decoding sweep) -> $root/$name/ARM/seedS"
rc=0
$PY -m asr.sweep -m "+ablation=$name" "data_dir=$data" "ablation.root=$root" "$@" || rc=$?
[ $rc -eq 0 ] || echo "== the sweep exited with status $rc: collecting what there is (failed runs are listed)" >&2

echo "== ablation $name: table and plots -> $DOCS/ablation_$name.{md,png}, $DOCS/ablation_${name}_curves.png"
borrow=(); [ -n "${BASELINE_FROM:-}" ] && borrow=(--baseline-from "$BASELINE_FROM")
$PY "$ROOT/tools/collect_ablation.py" "$root/$name" --out-md "$DOCS/ablation_$name.md" \
  --out-png "$DOCS/ablation_$name.png" --out-curves "$DOCS/ablation_${name}_curves.png" "${borrow[@]}"

DOCS=$DOCS bash local/gather_ablations.sh
exit $rc
