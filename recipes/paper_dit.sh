#!/usr/bin/env bash
# The paper-size text-to-latent DiT (601 M parameters: width 1024, 24 blocks, AdaLN-SOLA, FLAN-T5-large text)
# on AudioCaps + WavCaps dasheng latents, 8 GPUs.
#
#   bash recipes/paper_data.sh                     # manifest, dasheng latents, shards (once, shared with the vocoder)
#   T5=/ckpt/flan-t5-large bash recipes/paper_dit.sh
#   DRY_RUN=1 bash recipes/paper_dit.sh            # print the commands only
#
# Official conventions (spec D.4): logit-normal timesteps, velocity target noise - x1, frame-masked MSE,
# condition dropout 0.2 on the projected text, 10 s segments (latent_shape [768, 250]).  Batch size, learning
# rate and step count of the paper are not published; these are sara's pretraining defaults (AdamW lr 1e-4,
# 500 warm-up steps, clip 1.0) with a global batch of 256 (8 x 32) and EMA 0.9999.  Activations of one 10 s
# item are ~1.7 GB under bf16 autocast (measured on the CPU), so 32 per GPU need --gradient-checkpointing
# (estimated ~20 GB per GPU) or a smaller BATCH with GRAD_ACCUM; see recipes/PAPER_SETUP.md (estimates).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-work/paper}
RUNS=${RUNS:-$WORK/runs}
T5=${T5:-google/flan-t5-large}  # local directory or an id already in the HF cache (the run is offline-safe)
VOCODER=${VOCODER:-$RUNS/vocoder_release}  # for audio samples and the exported TextToAudio bundle
NGPU=${NGPU:-8}
BATCH=${BATCH:-32}  # per GPU
GRAD_ACCUM=${GRAD_ACCUM:-1}
MAX_STEPS=${MAX_STEPS:-400000}
PRECISION=${PRECISION:-bf16}
WORKERS=${WORKERS:-6}
# EXTRA= to train without checkpointing (BATCH <= 24 on 80 GB, <= 12 on 40 GB).  The flag needs the training
# loop's TrainConfig.gradient_checkpointing (`sara train` says so in one line when it is missing).
EXTRA=${EXTRA:---gradient-checkpointing}
LAUNCH=${LAUNCH:-"accelerate launch --multi_gpu --num_processes $NGPU -m sara.cli"}  # or: torchrun --nproc_per_node 8 -m sara.cli

run() { echo "+ $*"; [[ -n ${DRY_RUN:-} ]] || "$@"; }

# shellcheck disable=SC2086
run $LAUNCH train t2a --run-dir "$RUNS/dit" --shards "$WORK/shards" --latent-cache "$WORK/latents" \
  --preset paper --text-encoder t5 --t5-path "$T5" --segment-seconds 10 \
  --lr 1e-4 --warmup-steps 500 --cfg-drop 0.2 --timestep-sampling logit_normal \
  --batch-size "$BATCH" --grad-accum "$GRAD_ACCUM" --max-steps "$MAX_STEPS" --ema-decay 0.9999 \
  --mixed-precision "$PRECISION" --num-workers "$WORKERS" --ckpt-every 5000 --valid-every 5000 \
  --sample-every 20000 --log-every 100 --vocoder "$VOCODER" $EXTRA --export "$RUNS/t2a_release"
