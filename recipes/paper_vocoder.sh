#!/usr/bin/env bash
# The paper-size SemanticVocoder (81 M parameters; dasheng latents -> 24 kHz) on AudioCaps + WavCaps, 8 GPUs.
#
#   bash recipes/paper_data.sh                     # manifest, dasheng latents, shards (once, shared with the DiT)
#   bash recipes/paper_vocoder.sh                  # stage 1: flow matching (the released model's stage)
#   STAGES="gan" bash recipes/paper_vocoder.sh     # optional stage 2: few-step GAN fine-tuning
#   DRY_RUN=1 bash recipes/paper_vocoder.sh        # print the commands only
#
# Hyper-parameters are Flow2GAN's stage-1 recipe (spec C.1; the SemanticVocoder training code is not released):
# ScaledAdam lr 0.035 with its median-relative clipping (scale 2), Eden2 (lr_batches 7500, warm-up 500 from 0.1),
# global batch 256 (here 8 GPUs x 32), 1.6 s crops (Flow2GAN: 1.5 s; sara crops whole 40 ms latent frames),
# fp32 in Flow2GAN (PRECISION=no) -- bf16 is sara's option.  MAX_STEPS: Flow2GAN's 200 LibriTTS epochs at batch
# 256 are ~277k steps; the right count for AudioCaps + WavCaps (~450k clips, one crop per clip per epoch:
# ~1.8k steps per epoch) is not published.  Expected memory and speed: recipes/PAPER_SETUP.md (estimates).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-work/paper}
RUNS=${RUNS:-$WORK/runs}
NGPU=${NGPU:-8}
BATCH=${BATCH:-32}  # per GPU
MAX_STEPS=${MAX_STEPS:-280000}
PRECISION=${PRECISION:-bf16}
WORKERS=${WORKERS:-6}
STAGES=${STAGES:-"flow"}
GAN_STEPS=${GAN_STEPS:-1}  # Euler steps of the stage-2 generator (Flow2GAN: 1, 2 or 4)
EXTRA=${EXTRA:-}           # e.g. EXTRA=--gradient-checkpointing (not needed at 32 x 1.6 s per GPU)
LAUNCH=${LAUNCH:-"accelerate launch --multi_gpu --num_processes $NGPU -m sara.cli"}  # or: torchrun --nproc_per_node 8 -m sara.cli

want() { [[ " $STAGES " == *" $1 "* ]]; }
run() { echo "+ $*"; [[ -n ${DRY_RUN:-} ]] || "$@"; }

if want flow; then
  # shellcheck disable=SC2086
  run $LAUNCH train vocoder --run-dir "$RUNS/vocoder" --shards "$WORK/shards" --latent-cache "$WORK/latents" \
    --preset paper --segment-seconds 1.6 --optimizer scaled_adam --lr 0.035 --lr-batches 7500 --warmup-batches 500 \
    --batch-size "$BATCH" --max-steps "$MAX_STEPS" --mixed-precision "$PRECISION" --num-workers "$WORKERS" \
    --ckpt-every 5000 --valid-every 5000 --sample-every 20000 --log-every 100 $EXTRA \
    --export "$RUNS/vocoder_release"
fi

if want gan; then  # Flow2GAN stage 2 (spec C.2): global batch 64, 1000 discriminator-only batches, mel weight 45
  # shellcheck disable=SC2086
  run $LAUNCH train vocoder --stage gan --init "$RUNS/vocoder_release" --gan-steps "$GAN_STEPS" \
    --run-dir "$RUNS/vocoder_gan$GAN_STEPS" --shards "$WORK/shards" --latent-cache "$WORK/latents" \
    --batch-size $((64 / NGPU)) --lr-gen 0.002 --lr-disc 0.02 --gen-start-step 1000 --mel-weight 45 \
    --max-steps "${GAN_MAX_STEPS:-140000}" --mixed-precision "$PRECISION" --num-workers "$WORKERS" \
    --ckpt-every 5000 --log-every 100 $EXTRA --export "$RUNS/vocoder_gan${GAN_STEPS}_release"
fi
