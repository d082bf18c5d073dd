#!/usr/bin/env bash
# Train the AudioGen demo models on the open corpus, on CPU:
#
#   bash recipes/audiogen_demo.sh                 # all stages; every stage resumes or skips finished work
#   STAGES="lm bundle" bash recipes/audiogen_demo.sh
#
# Stages: corpus -> 16 kHz EnCodec (small: 4 x 1024 codes at 50 Hz; L1 + multi-scale mel, no discriminator: a
# discriminator step costs several generator steps on this CPU) -> token cache of every clip -> the token LM
# (small: dim 256, 4 layers, MiniLM text, delay pattern, 10 % condition dropout) -> bundle (an AudioGen release
# with the codec inside, weights stored in float16).
# MINUTES_* are wall-time budgets; a stage stopped by its budget resumes bit-exactly when run again.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-work}
CORPUS=${CORPUS:-$WORK/corpus}
RUNS=${RUNS:-$WORK/runs/audiogen_demo}
OUT=${OUT:-sara/pretrained/audiogen-demo}
STAGES=${STAGES:-"corpus codec lm bundle"}
MINUTES_CODEC=${MINUTES_CODEC:-55}
MINUTES_LM=${MINUTES_LM:-75}
SARA=${SARA:-sara}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # runs beside the latent-diffusion recipe on a 2-core machine
M="$CORPUS/manifest.jsonl"

want() { [[ " $STAGES " == *" $1 "* ]]; }

if want corpus && [[ ! -f "$M" ]]; then
  $SARA data build-corpus "$CORPUS" --preset full
fi

if want codec; then
  $SARA train codec --run-dir "$RUNS/codec" --data "$M" --preset small --no-adversarial --batch-size 8 \
    --ema-decay 0.99 --max-steps 100000 --max-minutes "$MINUTES_CODEC" --log-every 20 --ckpt-every 100 \
    --valid-every 500
  $SARA export "$RUNS/codec" "$RUNS/codec_release"
fi

if want lm; then
  $SARA train audiogen --run-dir "$RUNS/lm" --data "$M" --token-cache "$RUNS/tokens" --build-tokens \
    --codec "$RUNS/codec_release" --preset small --segment-seconds 5 --lr 1e-3 --warmup-steps 500 \
    --batch-size 16 --max-steps 100000 --max-minutes "$MINUTES_LM" --log-every 20 --ckpt-every 200 \
    --valid-every 500
fi

if want bundle; then
  $SARA export "$RUNS/lm" "$OUT" --half
  echo "wrote $OUT"
fi
