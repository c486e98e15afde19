#!/usr/bin/env bash
# ABLATIONS.md from the sweeps already collected: every $DOCS/ablation_*.md (tools/collect_ablation.py's tables),
# one after another with its plots. run_ablation.sh calls it after each sweep; run it alone to regather after
# collecting by hand (e.g. from a record: tools/record_runs.py).
#
# Usage (from anywhere; it works in recipes/aishell/):
#   DOCS=docs/v2 bash local/gather_ablations.sh        # ABLATIONS_MD=FILE to write elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS=${DOCS:-docs}

# ABLATIONS.md: every collected sweep in $DOCS, one after another, with its plots (written whole, then renamed).
# The text between the plan markers of the current file (the plan of the next sweeps) is kept as it is.
out=${ABLATIONS_MD:-ABLATIONS.md}
plan_start='<!-- plan: kept as written when run_ablation.sh regenerates this file -->'; plan_end='<!-- end of plan -->'
plan=""
[ -f "$out" ] && plan=$(awk -v a="$plan_start" -v b="$plan_end" '$0 == a {on = 1} on {print} $0 == b {on = 0}' "$out")
{
  echo "# Ablations"
  echo
  echo "Made by \`bash recipes/aishell/run_ablation.sh NAME\` for each sweep below; regenerated after every sweep."
  echo "Unless a sweep says otherwise: **synthetic corpus** (tools/make_synthetic_aishell.py), not AISHELL-1; the tiny"
  echo "demo model; every arm trains the same number of steps (see each table's \"steps\" column) on a 2-core CPU."
  [ -n "$plan" ] && printf '\n%s\n' "$plan"
  for md in "$DOCS"/ablation_*.md; do
    [ -e "$md" ] || continue
    sweep=$(basename "$md" .md)
    echo
    sed -e 's/^## /### /' -e 's/^# /## /' "$md"
    echo
    echo "![CER per arm]($DOCS/$sweep.png)"
    echo "![validation CER curves]($DOCS/${sweep}_curves.png)"
  done
} > "$out.tmp" && mv "$out.tmp" "$out"
echo "== $out updated"
