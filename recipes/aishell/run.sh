#!/usr/bin/env bash
# AISHELL-1 recipe, end to end. Run from anywhere; it works in recipes/aishell/.
#
# Usage:
#   bash run.sh --demo                         # synthetic corpus, tiny model, CPU (what `make demo` runs)
#   bash run.sh --corpus /data/aishell         # real AISHELL-1 (downloaded there if missing)
#   bash run.sh --corpus /data/aishell --stage 3 --stop-stage 3 -- trainer.devices=8
#   bash run.sh --demo --experiment demo_streaming  # the streaming demo on the demo's corpus and data (data/demo)
#   bash run.sh --demo --random-text 0.3 --experiment demo_streaming  # ... on the demo corpus with 30 % of its
#                                              # training sentences random word sequences (corpus/synthetic_rt30,
#                                              # data/demo_rt30; dev and test identical): what streaming needs
#   bash run.sh --demo --corpus corpus/daily --experiment demo_daily  # the demo on another synthetic corpus
#                                              # (ABLATIONS.md, step 5): data/demo_daily, exp/demo_daily
#
# Stages (each skips work already done; --force redoes it):
#   0 corpus: synthesise (--demo) or download AISHELL-1     1 prepare manifests
#   2 tokenizer (char units) and global CMVN                3 train
#   4 average checkpoints into a model file            5 decode dev and test in every mode, results table
#   6 n-gram LMs (char 5-gram, word 3-gram), TLG graph, decode test with the LM modes
#   7 export to ONNX (fp32, int8, mixed; static Ascend OM profile + atc script), transcribe a test wav with it
#   8 long-form set (recordings of 1-10 minutes joined from test utterances, true boundaries beside them;
#     a second one with background noise when the corpus has noise/noise.list); transcribe it with asr-transcribe
#     on every backend (torch, onnxruntime, om: static profile, OM_RUNTIME=onnxruntime by default, acl on an
#     Ascend host; the noisy set on onnxruntime only) with both VADs; long-form CER vs the same utterances
#     decoded one by one, timestamp errors
#   9 test conditions of the ablation benchmark (tools/make_test_conditions.py -> $data/conditions: test_long,
#     test_noisy, test_multispk, and on the synthetic corpus test_rare and test_randomtext, read by new eSpeak
#     speakers); decode each in every mode -> $exp/decode/SET, table of test and the conditions. Sweeps decode them
#     with evaluate=conditions (ABLATIONS.md, "How the sweeps run")
# A streaming model (trained with model.encoder.causal=true, e.g. experiment=demo_streaming) is also decoded chunk by
# chunk in stage 5 (test set, chunks of $streaming_chunks encoder frames -> $exp/decode_chunkC) and exported with its
# streaming encoder in stage 7 (chunk 16, 4 left chunks), which then transcribes the test wav streaming too.
# Arguments after "--" go to the training entry point as Hydra overrides; "--decode KEY=VALUE" (repeatable) to
# the decode entry point (e.g. --decode device=cuda --decode beam=20).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
PY=${PYTHON:-python}

stage=0; stop_stage=100; demo=false; corpus=""; experiment=""; force=false; average_num=""; overrides=()
random_text=""
decode_overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --demo) demo=true; shift ;;
    --corpus) corpus=$2; shift 2 ;;
    --experiment) experiment=$2; shift 2 ;;
    --average-num) average_num=$2; shift 2 ;;
    --random-text) random_text=$2; shift 2 ;;
    --decode) decode_overrides+=("$2"); shift 2 ;;
    --force) force=true; shift ;;
    --) shift; overrides=("$@"); break ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
if $demo; then
  # demo: the last (cosine-annealed) checkpoint alone; averaging it with earlier ones costs 1.3-2.4 CER (RESULTS.md)
  # --random-text P: that share of the synthetic training sentences are random word sequences (a corpus of its own)
  suffix=${random_text:+_rt$(awk -v p="$random_text" 'BEGIN { printf "%d", p * 100 + 0.5 }')}
  corpus=${corpus:-corpus/synthetic$suffix}; experiment=${experiment:-demo}; average_num=${average_num:-1}
  # CPU training threads that sleep at OpenMP barriers instead of spinning: with another program on one of the two
  # cores, spinning threads made a step 2-4x slower (RESULTS.md, "Demo on a busy machine"); on a quiet machine
  # this costs nothing measurable
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
else
  [ -n "$corpus" ] || { echo "give --corpus DIR (AISHELL-1 goes there) or --demo" >&2; exit 2; }
  experiment=${experiment:-aishell_conformer}; average_num=${average_num:-20}
fi
data=data/$experiment; exp=exp/$experiment
# Demo experiments share the default synthetic corpus's data; a corpus given with --corpus gets data/demo_NAME
# (sharing data/demo, stage 1 would find its manifests, skip, and train on the wrong corpus).
if $demo; then
  data=data/demo${suffix:-}; exp=exp/$experiment${suffix:-}
  [ "$corpus" = "corpus/synthetic${suffix:-}" ] || data=data/demo_$(basename "$corpus")
fi
streaming_chunks="16 8 4"
is_streaming() { grep -qE "^    causal: true" "$exp/.hydra/config.yaml" 2>/dev/null; }
run() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
done_already() { ! $force && [ -e "$1" ] && echo "  $1 exists, skipping (--force to redo)"; }

if run 0; then
  echo "== stage 0: corpus in $corpus"
  if [ -f "$corpus/data_aishell/transcript/aishell_transcript_v0.8.txt" ] && ! $force; then
    echo "  corpus present, skipping"
  elif $demo; then
    $PY "$ROOT/tools/make_synthetic_aishell.py" --out "$corpus" ${random_text:+--random-text-share "$random_text"}
  else
    $PY local/download_aishell.py --dir "$corpus"
  fi
fi

if run 1; then
  echo "== stage 1: manifests -> $data"
  done_already "$data/test.jsonl" || $PY local/prepare_aishell.py --corpus "$corpus" --out "$data"
fi

if run 2; then
  echo "== stage 2: character units and CMVN"
  done_already "$data/lang_char/units.txt" || $PY -m asr.tokenizer.build --manifest "$data/train.jsonl" \
    --kind char --out "$data/lang_char" --check "$data/dev.jsonl" "$data/test.jsonl"
  done_already "$data/cmvn.json" || $PY -m asr.features.compute_cmvn --manifest "$data/train.jsonl" --out "$data/cmvn.json"
fi

if run 3; then
  echo "== stage 3: training -> $exp"
  $demo && echo "  2,400 optimizer steps: about 14 minutes on a quiet 2-core CPU; a busy machine takes longer and" \
    "trains the same model (the budget is in steps; trainer.max_time is a 2-hour safety stop)"
  if done_already "$exp/checkpoints/last.ckpt"; then :; else
    $PY -m asr.train experiment="$experiment" data_dir="$data" exp_dir="$exp" "${overrides[@]}"
  fi
fi

if run 4; then
  echo "== stage 4: average $average_num best checkpoints -> $exp/model.safetensors"
  done_already "$exp/model.safetensors" || $PY -m asr.average --ckpt-dir "$exp/checkpoints" --num "$average_num" \
    --mode best --out "$exp/model.safetensors"
fi

if run 5; then
  echo "== stage 5: decode dev and test (all modes) -> $exp/decode"
  for split in dev test; do
    done_already "$exp/decode/$split/attention_rescoring/summary.json" || $PY -m asr.decode \
      model="$exp/model.safetensors" manifest="$data/$split.jsonl" out_dir="$exp/decode/$split" "${decode_overrides[@]}"
  done
  tables=("$exp/decode")
  if is_streaming; then
    for chunk in $streaming_chunks; do
      done_already "$exp/decode_chunk$chunk/test/attention_rescoring/summary.json" || $PY -m asr.decode \
        model="$exp/model.safetensors" manifest="$data/test.jsonl" out_dir="$exp/decode_chunk$chunk/test" \
        chunk_size="$chunk" "modes=[ctc_greedy_search,ctc_prefix_beam_search,attention_rescoring]" \
        "${decode_overrides[@]}"
      tables+=("$exp/decode_chunk$chunk")
    done
  fi
  $PY "$ROOT/tools/results_table.py" "${tables[@]}" --out "$exp/decode/results.md"
  cat "$exp/decode/results.md"
fi

if run 6; then
  echo "== stage 6: n-gram LMs and TLG -> $data/lm; decode test with the LM modes -> $exp/decode_lm/test"
  bash local/lm_stage.sh --data "$data" --corpus "$corpus"
  done_already "$exp/decode_lm/test/tlg_attention_rescoring/summary.json" || $PY -m asr.decode \
    model="$exp/model.safetensors" manifest="$data/test.jsonl" out_dir="$exp/decode_lm/test" +lm=default \
    lm.path="$data/lm/char_5gram.arpa" lm.tlg_dir="$data/lm/tlg" \
    "modes=[ctc_prefix_beam_search,ctc_prefix_beam_search_lm,attention_rescoring,attention_rescoring_lm,tlg,tlg_attention_rescoring]" \
    "${decode_overrides[@]}"
  $PY "$ROOT/tools/results_table.py" "$exp/decode_lm" --out "$exp/decode_lm/results.md"   # the no-LM and LM rows
  cat "$exp/decode_lm/results.md"
fi

if run 7; then
  echo "== stage 7: export -> $exp/onnx, then transcribe a test utterance with ONNX Runtime"
  streaming_export=(); is_streaming && streaming_export=(--streaming-chunk 16 --streaming-left-chunks 4)
  done_already "$exp/onnx/export_report.json" || $PY -m asr.export --model "$exp/model.safetensors" --out "$exp/onnx" \
    --quantize int8 mixed --om-profile "${streaming_export[@]}"
  wav=$($PY -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['audio'])" "$data/test.jsonl")
  echo "  asr-transcribe $wav --model $exp/onnx --backend onnxruntime"
  $PY -m asr.inference.cli "$wav" --model "$exp/onnx" --backend onnxruntime
  if is_streaming; then
    echo "  asr-transcribe $wav --model $exp/onnx --backend onnxruntime --streaming"
    $PY -m asr.inference.cli "$wav" --model "$exp/onnx" --backend onnxruntime --streaming
  fi
  echo "  reference: $(head -n1 "$data/test.jsonl" | $PY -c "import json,sys; print(json.loads(sys.stdin.readline())['text'])")"
fi

if run 8; then
  echo "== stage 8: long-form sets -> $data/long_form*, transcribed on every backend with both VADs -> $exp/long_form*"
  om_runtime=${OM_RUNTIME:-onnxruntime}; mode=attention_rescoring
  sets=(long_form); noise_list=$corpus/noise/noise.list
  [ -f "$noise_list" ] && sets+=(long_form_noisy)
  for set in "${sets[@]}"; do
    noise_args=(); [ "$set" = long_form_noisy ] && noise_args=(--noise-list "$noise_list" --seed 1)
    done_already "$data/$set/long_form.jsonl" || $PY "$ROOT/tools/make_long_form.py" --manifest "$data/test.jsonl" \
      --out "$data/$set" "${noise_args[@]}"
    lf=$exp/$set; mkdir -p "$lf"; score=()
    backends=(torch onnxruntime om)
    # the backends give the same text (the clean set shows it); the noisy set measures the VADs, on one backend
    [ "$set" = long_form_noisy ] && backends=(onnxruntime)
    for backend in "${backends[@]}"; do
      case $backend in torch) model=$exp/model.safetensors ;; onnxruntime) model=$exp/onnx ;; om) model=$exp/onnx/om ;; esac
      # the reference: the same utterances (cut from the recordings) decoded one by one
      done_already "$lf/one_by_one_$backend/$mode/text" || $PY -m asr.decode model="$model" backend=$backend \
        om_runtime="$om_runtime" manifest="$data/$set/utterances.jsonl" out_dir="$lf/one_by_one_$backend" \
        "modes=[$mode]" progress=false
      score+=(--one-by-one "$backend=$lf/one_by_one_$backend/$mode/text")
      for vad in energy silero; do
        out=$lf/${backend}_$vad.jsonl
        if ! done_already "$out"; then
          start=$(date +%s)
          $PY -m asr.inference.cli "$data/$set/wav" --model "$model" --backend $backend --om-runtime "$om_runtime" \
            --vad $vad --mode $mode --json > "$out.partial"
          mv "$out.partial" "$out"
          echo "  $backend / $vad: $(( $(date +%s) - start )) s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
        fi
        score+=(--transcripts "$backend/$vad=$out")
      done
    done
    $PY "$ROOT/tools/score_long_form.py" --set "$data/$set/long_form.jsonl" "${score[@]}" --out "$lf/summary.json" \
      | tee "$lf/results.md"
  done
fi

if run 9; then
  echo "== stage 9: test conditions -> $data/conditions; decode them in every mode -> $exp/decode/SET"
  conditions=(test_long test_noisy test_multispk); domain=news
  # the eSpeak conditions read the synthetic corpus's grammar; on real speech they would test the voice, not the model
  if [ -f "$corpus/stats.json" ]; then
    conditions+=(test_rare test_randomtext)
    domain=$($PY -c "import json,sys; print(json.load(open(sys.argv[1])).get('domain', 'news'))" "$corpus/stats.json")
  fi
  done_already "$data/conditions/conditions.json" || $PY "$ROOT/tools/make_test_conditions.py" --data "$data" \
    --out "$data/conditions" --conditions "${conditions[@]}" --domain "$domain"
  for set in "${conditions[@]}"; do
    done_already "$exp/decode/$set/attention_rescoring/summary.json" || $PY -m asr.decode \
      model="$exp/model.safetensors" manifest="$data/conditions/$set.jsonl" out_dir="$exp/decode/$set" progress=false \
      "${decode_overrides[@]}"
  done
  $PY "$ROOT/tools/results_table.py" "$exp/decode" --splits test "${conditions[@]}" --out "$exp/decode/conditions.md"
  cat "$exp/decode/conditions.md"
fi
