#!/usr/bin/env bash
# Train the latent-diffusion (Tango-style) demo models on the open corpus, on CPU:
#
#   bash recipes/ldm_demo.sh                  # all stages; every stage resumes or skips finished work
#   STAGES="unet bundle" bash recipes/ldm_demo.sh
#
# Stages: corpus -> mel VAE and HiFi-GAN side by side (one core each) -> VAE latent cache of the training split
# (Tango's mel front end at FRAMES frames, caption mixtures) + UNet (MiniLM text, v-prediction, Min-SNR 5,
# 10 % condition dropout) -> bundle (a LatentDiffusion release: unet/ + vae/ + vocoder/ + text spec, float16).
# MINUTES_* are wall-time budgets; a stage stopped by its budget resumes bit-exactly when run again.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-work}
CORPUS=${CORPUS:-$WORK/corpus}
RUNS=${RUNS:-$WORK/runs/ldm_demo}
OUT=${OUT:-sara/pretrained/ldm-demo}
STAGES=${STAGES:-"corpus vae_hifigan unet bundle"}
MINUTES_VAE=${MINUTES_VAE:-88}  # the run behind the cache being built: 55 + 33 min (1437 steps)
MINUTES_HIFIGAN=${MINUTES_HIFIGAN:-110}
MINUTES_UNET=${MINUTES_UNET:-120}
UNET_LR=${UNET_LR:-2e-4}        # the 6.3M demo UNet takes a higher rate than Tango's 3e-5 (866M)
DEFAULT_CFG=${DEFAULT_CFG:-3}  # Tango's guidance; see the model card for the valid-split check
DEFAULT_STEPS=${DEFAULT_STEPS:-25}
FRAMES=${FRAMES:-416}          # 4.16 s: a multiple of 32 (VAE factor 4 x the UNet's 3 downsamplings)
MIX_FRACTION=${MIX_FRACTION:-0.25}
SARA=${SARA:-sara}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # two jobs side by side on a 2-core machine
M="$CORPUS/manifest.jsonl"

want() { [[ " $STAGES " == *" $1 "* ]]; }

if want corpus && [[ ! -f "$M" ]]; then
  $SARA data build-corpus "$CORPUS" --preset full
fi

if want vae_hifigan; then
  # the VAE: AudioLDM's objective without LPIPS (no weights offline); the PatchGAN starts late (CPU budget)
  $SARA train vae --run-dir "$RUNS/vae" --data "$M" --preset small --disc-preset small --crop-frames 128 \
    --lr 1e-4 --disc-start 3000 --batch-size 8 --max-steps 100000 --max-minutes "$MINUTES_VAE" \
    --log-every 20 --ckpt-every 100 --valid-every 500 --export "$RUNS/vae_release" &
  VAE_PID=$!
  # HiFi-GAN V2 width, mel L1 only: a discriminator step costs ~10x a generator step on this CPU
  $SARA train hifigan --run-dir "$RUNS/hifigan" --data "$M" --preset small --no-adversarial \
    --segment-samples 8160 --batch-size 8 --max-steps 100000 --max-minutes "$MINUTES_HIFIGAN" \
    --log-every 20 --ckpt-every 100 --valid-every 500 --export "$RUNS/hifigan_release"
  wait "$VAE_PID"
fi

if want unet; then
  $SARA train ldm --run-dir "$RUNS/unet" --latent-cache "$RUNS/latents" --build-cache --data "$M" \
    --vae "$RUNS/vae_release" --vocoder "$RUNS/hifigan_release" --frames "$FRAMES" \
    --mix-fraction "$MIX_FRACTION" --preset small --text-encoder minilm --lr "$UNET_LR" --warmup-steps 200 \
    --lr-schedule constant --uncondition-prob 0.1 --batch-size 8 --max-steps 100000 \
    --max-minutes "$MINUTES_UNET" --log-every 20 --ckpt-every 200 --valid-every 500
fi

if want bundle; then
  # float16 storage (half the bytes; loaded as float32), DPM-Solver++ at 4.16 s (the training length) by default
  $SARA export "$RUNS/unet" "$OUT" --half --default-sampler dpmsolver++ --default-steps "$DEFAULT_STEPS" \
    --default-cfg "$DEFAULT_CFG" --default-duration "$(python3 -c "print($FRAMES / 100)")"
  echo "wrote $OUT"
fi
