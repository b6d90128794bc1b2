#!/usr/bin/env bash
# The whole training pipeline after the corpus and tokenizer exist: base model -> self-distilled
# greedy continuations -> draft heads (CTC, with and without the pending-token embedding, the
# better one continued; and Medusa heads with the same budget). Budgets in minutes via env vars.
#
#   CPU (hours):  OPENBLAS_CORETYPE=SkylakeX (Haswell on AVX2-only CPUs) training/train_all.sh
#   CUDA (~8 min): DEVICE=cuda BASE_MIN=2.5 BASE_BATCH=128 DISTILL_SEQS=16384 DISTILL_BATCH=2048 \
#                  ABLATE_MIN=0.5 HEAD_MIN=1.5 HEAD_SEQS=256 training/train_all.sh
# Every stage checkpoints under checkpoints/; rerun a stage's command with --resume to continue it.
set -euo pipefail
cd "$(dirname "$0")/.."   # the repository root: python -m training.<step>, paths relative to it
PY=${PY:-/usr/bin/python3}
DEVICE=${DEVICE:-auto}
BASE_MIN=${BASE_MIN:-150}
BASE_BATCH=${BASE_BATCH:-16}
BASE_MAX_TOKENS=${BASE_MAX_TOKENS:-0}
DISTILL_SEQS=${DISTILL_SEQS:-2048}
DISTILL_BATCH=${DISTILL_BATCH:-64}
ABLATE_MIN=${ABLATE_MIN:-5}
HEAD_MIN=${HEAD_MIN:-20}
HEAD_SEQS=${HEAD_SEQS:-16}
CKPT=${CKPT:-checkpoints}

$PY -m training.train_base --device "$DEVICE" --minutes "$BASE_MIN" --batch "$BASE_BATCH" \
  --max-tokens "$BASE_MAX_TOKENS" --checkpoint-minutes 1 --out "$CKPT/base"
$PY -m training.distill --device "$DEVICE" --base "$CKPT/base/ckpt.pt" --sequences "$DISTILL_SEQS" \
  --batch "$DISTILL_BATCH" --out data/distill

# Ablation: does conditioning on the pending token's embedding help? Same budget each.
for t in 0 1; do
  $PY -m training.train_heads --kind ctc --use-token $t --device "$DEVICE" --base "$CKPT/base/ckpt.pt" \
    --minutes "$ABLATE_MIN" --seqs-per-step "$HEAD_SEQS" --out "$CKPT/ablate-ctc-token$t"
done
BEST=$($PY -c "import json;a=[json.load(open('$CKPT/ablate-ctc-token%d/summary.json'%t)) for t in (0,1)];print(max((x['top1_chain_accepted'],int(x['use_token'])) for x in a)[1])")
echo "ctc ablation winner: use_token=$BEST"
$PY -m training.train_heads --kind ctc --use-token "$BEST" --device "$DEVICE" --base "$CKPT/base/ckpt.pt" \
  --minutes "$HEAD_MIN" --seqs-per-step "$HEAD_SEQS" --out "$CKPT/ctc"
$PY -m training.train_heads --kind medusa --use-token "$BEST" --device "$DEVICE" --base "$CKPT/base/ckpt.pt" \
  --minutes "$HEAD_MIN" --seqs-per-step "$HEAD_SEQS" --out "$CKPT/medusa"
