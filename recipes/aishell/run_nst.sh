#!/usr/bin/env bash
# Noisy-student training (NST) with an LM filter (issue 20). Run from anywhere; it works in recipes/aishell/.
#
# Usage:
#   bash run_nst.sh --demo --seed 1 --unfiltered            # the synthetic setting on the demo corpus (RESULTS.md)
#   bash run_nst.sh --demo --data data/demo_rt30 --corpus corpus/synthetic_rt30 --split data/demo_rt30/nst_l2500 \
#     --labelled-utts 2500 --other-domain data/daily_nst/train.jsonl --lm data/demo_rt30/nst/lm/char_5gram.arpa \
#     --seed 1 --unfiltered      # the same on the random-text corpus with a 2.9 h labelled set and another text
#                                # domain's speech in the unlabelled set (RESULTS.md, "Noisy-student training")
#   bash run_nst.sh --data data/mine --labelled data/mine/train.jsonl --unlabelled data/mine/untranscribed.jsonl \
#     --lm data/mine/lm/char_5gram.arpa --exp exp/nst_mine --iterations 3 --threshold 0.1 -- trainer.max_steps=30000
#
# --data: the prepared folder of the labelled corpus (lang_char/, cmvn.json, dev.jsonl, test.jsonl: run.sh stages
# 1-2); --labelled: its training manifest; --unlabelled: rows of id, audio, duration (and speaker), no text needed;
# --lm: a character n-gram ARPA of the target domain's text (local/lm_stage.sh makes one from a text file).
#
# Stages (each skips work already done; --force redoes it):
#   0 --demo: the synthetic split (tools/make_nst_split.py -> data/demo/nst: labelled speakers, noisy unlabelled
#     audio without text, its text aside for CER-Label, a noisy test copy; --corpus: whose noise clips; --split:
#     where (default DATA/nst); --labelled-utts N: the labelled set's size (whole speakers, default 1000);
#     --other-domain MANIFEST: another text domain's prepared speech added to the unlabelled set)
#   1 teacher: python -m asr.train experiment=$teacher_experiment on --labelled -> $exp/iter0/teacher; then
#     python -m asr.evaluate (model.safetensors, dev/test/--test-set CERs in metrics.json)
#   for each iteration K = 1 .. --iterations (its model: the teacher, then iteration K-1's filtered student):
#   2 pseudo-label --unlabelled in two decodes, without and with the LM (python -m asr.nst.pseudo_label;
#     --plain-mode, --lm-mode, --label-mode) -> $exp/iterK/pseudo (hyps.jsonl, rejected.tsv, summary.json)
#   3 CER-Hypo, filter (--threshold T: keep CER-Hypo <= T; or --keep-best X: the X % lowest), the student's training
#     manifest = labelled + kept (python -m asr.nst.manifests) -> $exp/iterK/filter; with --unfiltered also every
#     pseudo-label kept -> $exp/iterK/filter_all
#   4 student(s): experiment=$student_experiment (same model, steps, augmentation) on that manifest, from scratch
#     -> $exp/iterK/student (and $exp/iterK/student_nofilter); asr.evaluate
#   5 report: tools/nst_report.py $exp -> $exp/report.md (+ scatter plot of CER-Hypo vs CER-Label with --ref)
# Arguments after "--" go to every training as Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
PY=${PYTHON:-python}

stage=0; stop_stage=100; demo=false; force=false; seed=1; iterations=1; steps=""; unfiltered=false
data=""; corpus=""; split=""; labelled_utts=1000; other_domain=""; labelled=""; unlabelled=""; lm=""; ref=""; exp=""; threshold=""; keep_best=""; threads=1
plain_mode=attention_rescoring; lm_mode=attention_rescoring_lm; label_mode=""
teacher_experiment=nst_teacher; student_experiment=nst_student
eval_modes="[ctc_greedy_search,ctc_prefix_beam_search,attention_rescoring]"
test_sets=(); overrides=(); pseudo_overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --demo) demo=true; shift ;;
    --force) force=true; shift ;;
    --seed) seed=$2; shift 2 ;;
    --iterations) iterations=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --unfiltered) unfiltered=true; shift ;;
    --data) data=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    --split) split=$2; shift 2 ;;
    --labelled-utts) labelled_utts=$2; shift 2 ;;
    --other-domain) other_domain=$2; shift 2 ;;
    --labelled) labelled=$2; shift 2 ;;
    --unlabelled) unlabelled=$2; shift 2 ;;
    --lm) lm=$2; shift 2 ;;
    --ref) ref=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    --threshold) threshold=$2; shift 2 ;;
    --keep-best) keep_best=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --plain-mode) plain_mode=$2; shift 2 ;;
    --lm-mode) lm_mode=$2; shift 2 ;;
    --label-mode) label_mode=$2; shift 2 ;;
    --pseudo) pseudo_overrides+=("$2"); shift 2 ;;   # a setting of conf/decoding/pseudo_label.yaml, e.g. beam=20
    --test-set) test_sets+=("$2"); shift 2 ;;         # NAME=MANIFEST, decoded by asr.evaluate beside dev and test
    --teacher-experiment) teacher_experiment=$2; shift 2 ;;
    --student-experiment) student_experiment=$2; shift 2 ;;
    --eval-modes) eval_modes=$2; shift 2 ;;
    --) shift; overrides=("$@"); break ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
if $demo; then
  corpus=${corpus:-corpus/synthetic}; data=${data:-data/demo}; split=${split:-$data/nst}
  labelled=${labelled:-$split/labelled.jsonl}; unlabelled=${unlabelled:-$split/unlabelled.jsonl}
  ref=${ref:-$split/unlabelled_text.jsonl}; lm=${lm:-$data/lm/char_5gram.arpa}; exp=${exp:-exp/nst/seed$seed}
  [ -n "$threshold$keep_best" ] || threshold=0.1
  abs_split=$split; [[ $split = /* ]] || abs_split=$PWD/$split  # evaluate reads relative paths from data_dir
  [ ${#test_sets[@]} -gt 0 ] || test_sets=(test_noisy=$abs_split/test_noisy.jsonl)
  # sleeping OpenMP barriers: on a shared CPU spinning threads were 2-4x slower (run.sh, RESULTS.md)
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
fi
for v in data labelled unlabelled lm exp; do
  [ -n "${!v}" ] || { echo "give --$v (or --demo); see the header of $0" >&2; exit 2; }
done
[ -n "$threshold" ] && [ -n "$keep_best" ] && { echo "give --threshold or --keep-best, not both" >&2; exit 2; }
[ -n "$threshold$keep_best" ] || { echo "give --threshold T or --keep-best X" >&2; exit 2; }
rule=(--threshold "$threshold"); [ -n "$keep_best" ] && rule=(--keep-best "$keep_best")
label_mode=${label_mode:-$lm_mode}
run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
done_already() { ! $force && [ -e "$1" ] && echo "  $1 exists, skipping (--force to redo)"; }
stamp() { echo "  [$(date -u '+%F %T') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)] $*"; }

train_args=(data_dir="$data" seed="$seed" threads="$threads" test_after_fit=false)
# validate at the last step too, so that evaluation's best-by-validation checkpoint can be the annealed last one
[ -n "$steps" ] && train_args+=(trainer.max_steps="$steps" trainer.val_check_interval=$(( steps / 4 )))
eval_args=(evaluate.modes="$eval_modes" evaluate.threads="$threads")
for t in "${test_sets[@]}"; do eval_args+=("+evaluate.test_sets.${t%%=*}=${t#*=}"); done

train_and_evaluate() {  # EXP_DIR EXPERIMENT TRAIN_MANIFEST
  if ! done_already "$1/checkpoints/last.ckpt"; then
    stamp "train $1 (experiment=$2, data.train_manifest=$3)"
    $PY -m asr.train experiment="$2" exp_dir="$1" data.train_manifest="$3" "${train_args[@]}" "${overrides[@]}"
    stamp "trained $1"
  fi
  if ! done_already "$1/metrics.json"; then
    $PY -m asr.evaluate exp_dir="$1" "${eval_args[@]}"
    stamp "evaluated $1"
  fi
}

if run 0 && $demo; then
  echo "== stage 0: the synthetic NST split -> $split"
  other_args=(); [ -n "$other_domain" ] && other_args=(--other-domain "$other_domain")
  done_already "$split/split.json" || $PY "$ROOT/tools/make_nst_split.py" --data "$data" \
    --noise-list "$corpus/noise/noise.list" --out "$split" --labelled-utts "$labelled_utts" --seed 1 "${other_args[@]}"
fi

if run 1; then
  echo "== stage 1: teacher on $labelled -> $exp/iter0/teacher"
  train_and_evaluate "$exp/iter0/teacher" "$teacher_experiment" "$labelled"
fi

model=$exp/iter0/teacher/model.safetensors
for k in $(seq 1 "$iterations"); do
  it=$exp/iter$k
  if run 2; then
    echo "== stage 2 (iteration $k): pseudo-labels of $unlabelled by $model -> $it/pseudo"
    if ! done_already "$it/pseudo/hyps.jsonl"; then
      stamp "pseudo-label with $model"
      $PY -m asr.nst.pseudo_label model="$model" manifest="$unlabelled" out_dir="$it/pseudo" lm.path="$lm" \
        plain_mode="$plain_mode" lm_mode="$lm_mode" label_mode="$label_mode" threads="$threads" progress=false \
        "${pseudo_overrides[@]}"
      stamp "pseudo-labelled"
    fi
  fi
  if run 3; then
    echo "== stage 3 (iteration $k): CER-Hypo, filter (${rule[*]}), training manifests -> $it/filter"
    done_already "$it/filter/train.jsonl" || $PY -m asr.nst.manifests --hyps "$it/pseudo/hyps.jsonl" \
      --labelled "$labelled" --out "$it/filter" "${rule[@]}"
    if $unfiltered; then
      done_already "$it/filter_all/train.jsonl" || $PY -m asr.nst.manifests --hyps "$it/pseudo/hyps.jsonl" \
        --labelled "$labelled" --out "$it/filter_all" --keep-best 100
    fi
  fi
  if run 4; then
    echo "== stage 4 (iteration $k): student -> $it/student$($unfiltered && echo ", unfiltered student -> $it/student_nofilter")"
    train_and_evaluate "$it/student" "$student_experiment" "$it/filter/train.jsonl"
    if $unfiltered; then
      train_and_evaluate "$it/student_nofilter" "$student_experiment" "$it/filter_all/train.jsonl"
    fi
  fi
  model=$it/student/model.safetensors  # the filtered student teaches the next iteration
done

if run 5; then
  echo "== stage 5: report -> $exp/report.md"
  ref_args=(); [ -n "$ref" ] && ref_args=(--ref "$ref")
  $PY "$ROOT/tools/nst_report.py" "$exp" "${ref_args[@]}" --out-md "$exp/report.md" --out-png "$exp/cer_hypo_vs_label.png"
fi
