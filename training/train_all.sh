#!/usr/bin/env bash
# The training pipeline after the corpus and tokenizer exist, as the default model ships it: base model
# -> its own greedy continuations -> the draft heads (CTC and, with the same data and budget, the
# Medusa baseline). SAMPLED=1 adds continuations sampled at T = 1 beside the greedy ones and SOFT_CE
# soft targets towards the base distribution (the heads for sampled requests; checkpoints/README.md has
# what they measured). Budgets in minutes via env vars; export, quantize and shard follow
# (README "Your own model and heads", training/README.md).
#
#   CPU (hours):  OPENBLAS_CORETYPE=SkylakeX (Haswell on AVX2-only CPUs) training/train_all.sh
#   CUDA:         DEVICE=cuda BASE_MIN=2.5 BASE_BATCH=128 DISTILL_SEQS=8192 DISTILL_BATCH=2048 HEAD_MIN=5 training/train_all.sh
# Every stage checkpoints under checkpoints/; rerun a stage's command with --resume to continue it.
set -euo pipefail
cd "$(dirname "$0")/.."   # the repository root: python -m training.<step>, paths relative to it
PY=${PY:-/usr/bin/python3}
DEVICE=${DEVICE:-auto}
BASE_MIN=${BASE_MIN:-150}
BASE_BATCH=${BASE_BATCH:-16}
BASE_MAX_TOKENS=${BASE_MAX_TOKENS:-0}
DISTILL_SEQS=${DISTILL_SEQS:-2560}
DISTILL_BATCH=${DISTILL_BATCH:-128}
HEAD_MIN=${HEAD_MIN:-60}
SAMPLED=${SAMPLED:-0}
SOFT_CE=${SOFT_CE:-0}
CKPT=${CKPT:-checkpoints}

$PY -m training.train_base --device "$DEVICE" --minutes "$BASE_MIN" --batch "$BASE_BATCH" \
  --max-tokens "$BASE_MAX_TOKENS" --checkpoint-minutes 1 --out "$CKPT/base"
$PY -m training.distill --device "$DEVICE" --base "$CKPT/base/ckpt.pt" --sequences "$DISTILL_SEQS" \
  --gen-len 64 --batch "$DISTILL_BATCH" --out data/distill-greedy
DATA=data/distill-greedy
if [ "$SAMPLED" = 1 ]; then
  $PY -m training.distill --device "$DEVICE" --base "$CKPT/base/ckpt.pt" --sequences "$DISTILL_SEQS" --temperature 1 \
    --gen-len 64 --batch "$DISTILL_BATCH" --out data/distill-t1
  DATA=data/distill-t1,data/distill-greedy
fi

# The heads read the same data and get the same budget. CTC: k = 4 draft tokens in 8 slots, each slot
# a projection of the newest position (--slot-layers 0: the cheaper round), a per-slot CE guiding the
# alignment; both read out the 1024 tokens the base model emits most.
$PY -m training.train_heads --kind ctc --k 4 --slot-layers 0 --slot-ce 0.5 --soft-ce "$SOFT_CE" --device "$DEVICE" \
  --base "$CKPT/base/ckpt.pt" --data "$DATA" --cache-hidden 2 --minutes "$HEAD_MIN" --out "$CKPT/ctc"
$PY -m training.train_heads --kind medusa --k 6 --soft-ce "$SOFT_CE" --device "$DEVICE" \
  --base "$CKPT/base/ckpt.pt" --data "$DATA" --cache-hidden 2 --minutes "$HEAD_MIN" --out "$CKPT/medusa"
