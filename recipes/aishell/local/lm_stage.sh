#!/usr/bin/env bash
# LM stage of the AISHELL-1 recipe: n-gram LMs and the TLG graph for the LM decoding modes.
# Run from recipes/aishell/ (run.sh does), after stage 2 (units):
#
#   bash local/lm_stage.sh --data data/demo --corpus corpus/synthetic \
#     [--char-order 5] [--word-order 3] [--estimator auto|kenlm|python] [--force]
#
# Makes, in $data/lm/:
#   text.txt                  LM training text, one word-segmented sentence per line: $corpus/lm_text/train.txt
#                             when the corpus has one (the synthetic corpus), else the training transcripts of
#                             AISHELL-1 (data_aishell/transcript, the utterances of $data/train.jsonl)
#   char_${char_order}gram.arpa  character LM (the model's units) for shallow fusion (lm.path, lm.unit=char)
#   word_${word_order}gram.arpa  word LM for the TLG graph
#   tlg/                      TLG.fst, words.txt, tlg.json (lm.tlg_dir): compact CTC topology, G's back-off arcs
#                             kept as epsilon arcs (python -m asr.lm.tlg --help for the other choices)
# LMs are interpolated modified Kneser-Ney, estimated by KenLM's lmplz where tools/build_kenlm.sh can build it,
# else by the NumPy estimator asr/lm/estimate.py (the same model; seconds for AISHELL-1's 120k sentences);
# --estimator python skips lmplz, kenlm requires it; tools/train_lm.py prints which one made each file. Decode:
#   python -m asr.decode model=... manifest=... out_dir=... +lm=default lm.path=$data/lm/char_5gram.arpa \
#     lm.tlg_dir=$data/lm/tlg \
#     modes=[ctc_prefix_beam_search,ctc_prefix_beam_search_lm,attention_rescoring_lm,tlg,tlg_attention_rescoring]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
PY=${PYTHON:-python}
data=""; corpus=""; char_order=5; word_order=3; force=false; which=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    --char-order) char_order=$2; shift 2 ;;
    --word-order) word_order=$2; shift 2 ;;
    --estimator) which=$2; shift 2 ;;
    --force) force=true; shift ;;
    *) echo "lm_stage.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ -n "$data" ] && [ -n "$corpus" ] || { echo "lm_stage.sh: give --data DIR and --corpus DIR" >&2; exit 2; }
[ -f "$data/lang_char/units.txt" ] || { echo "lm_stage.sh: $data/lang_char/units.txt missing (run stage 2)" >&2; exit 1; }
lm=$data/lm
mkdir -p "$lm"
done_already() { ! $force && [ -e "$1" ] && echo "  $1 exists, skipping (--force to redo)"; }

# --- text ------------------------------------------------------------------------------------------
if ! done_already "$lm/text.txt"; then
  if [ -f "$corpus/lm_text/train.txt" ]; then
    cp "$corpus/lm_text/train.txt" "$lm/.text.txt.tmp"
  else
    $PY - "$corpus/data_aishell/transcript/aishell_transcript_v0.8.txt" "$data/train.jsonl" >"$lm/.text.txt.tmp" <<'EOF'
import json, sys
ids = {json.loads(line)["id"] for line in open(sys.argv[2], encoding="utf-8") if line.strip()}
for line in open(sys.argv[1], encoding="utf-8"):
    uid, _, text = line.strip().partition(" ")
    if uid in ids and text.strip():
        print(text.strip())
EOF
  fi
  mv "$lm/.text.txt.tmp" "$lm/text.txt"
  echo "  $lm/text.txt: $(wc -l <"$lm/text.txt") sentences"
fi

# --- estimator -------------------------------------------------------------------------------------
case "$which" in auto|kenlm|python) ;; *) echo "lm_stage.sh: --estimator auto, kenlm or python" >&2; exit 2 ;; esac
estimator=(--discount-fallback --estimator python)
if [ "$which" != python ]; then
  if bin=$(bash "$ROOT/tools/build_kenlm.sh" | tail -n1); then
    estimator=(--discount-fallback --estimator kenlm --kenlm-bin "$bin")
  elif [ "$which" = kenlm ]; then
    echo "lm_stage.sh: --estimator kenlm but lmplz could not be built (see above)" >&2; exit 1
  else
    echo "  lmplz could not be built (see above): using the modified Kneser-Ney estimator of asr/lm/estimate.py" >&2
  fi
fi

# --- LMs -------------------------------------------------------------------------------------------
done_already "$lm/char_${char_order}gram.arpa" || $PY "$ROOT/tools/train_lm.py" --text "$lm/text.txt" \
  --unit char --order "$char_order" --out "$lm/char_${char_order}gram.arpa" "${estimator[@]}"
done_already "$lm/word_${word_order}gram.arpa" || $PY "$ROOT/tools/train_lm.py" --text "$lm/text.txt" \
  --unit word --order "$word_order" --out "$lm/word_${word_order}gram.arpa" "${estimator[@]}"

# --- TLG graph -------------------------------------------------------------------------------------
done_already "$lm/tlg/TLG.fst" || $PY -m asr.lm.tlg --arpa "$lm/word_${word_order}gram.arpa" \
  --units "$data/lang_char/units.txt" --out "$lm/tlg"

# --- perplexities on dev and test --------------------------------------------------------------------
$PY -m asr.lm.perplexity --lm "$lm/char_${char_order}gram.arpa" --manifest "$data/dev.jsonl" "$data/test.jsonl" \
  --unit char
