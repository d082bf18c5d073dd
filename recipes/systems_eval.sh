#!/usr/bin/env bash
# Evaluate the bundled latent-diffusion / AudioGen / DC-LDM demo models with the SARA demo's protocol
# (recipes/demo_eval.sh), side by side with it, and write their model cards:
#
#   bash recipes/systems_eval.sh                        # every bundled demo that exists
#   MODELS="ldm-demo" bash recipes/systems_eval.sh
#
# Per model (EVAL/<model>/): reconstruction of the same 48 test clips through its autoencoder path (mel VAE +
# HiFi-GAN, or the EnCodec codes), and relevance: the corpus classifier labels two 4 s clips generated from each
# of 2 test captions per class, with the model's default sampler, steps and guidance.  The SARA demo is scored
# the same way afterwards when its results are missing (EVAL/reconstruction_steps2, EVAL/relevance); then the
# cards are written.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-work}
CORPUS=${CORPUS:-$WORK/corpus}
RUNS=${RUNS:-$WORK/runs}
EVAL=${EVAL:-$WORK/eval}
BUNDLED=${BUNDLED:-sara/pretrained}
MODELS=${MODELS:-"ldm-demo audiogen-demo dcldm-demo"}
SARA=${SARA:-sara}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
M="$CORPUS/manifest.jsonl"

python3 recipes/test_clips.py "$CORPUS" "$EVAL/test_clips"
if [[ ! -f "$EVAL/classifier/config.json" ]]; then
  $SARA eval train-classifier --manifest "$M" --out "$EVAL/classifier" --min-train-clips 10 --epochs 20 --augment
fi

relevance() {  # MODEL OUT [extra flags]
  local model=$1 out=$2
  shift 2
  [[ -f "$out/relevance.json" ]] || $SARA eval relevance --model "$model" --classifier "$EVAL/classifier" \
    --manifest "$M" --per-class 2 --samples-per-prompt 2 --duration 4 --out "$out" "$@"
}

for name in $MODELS; do
  model="$BUNDLED/$name"
  [[ -d "$model" ]] || { echo "skip $name (not bundled)"; continue; }
  mkdir -p "$EVAL/$name"
  [[ -f "$EVAL/$name/reconstruction/reconstruction.json" ]] || $SARA eval reconstruction --model "$model" \
    --audio "$EVAL/test_clips" --out "$EVAL/$name/reconstruction" --no-cache
  relevance "$model" "$EVAL/$name/relevance"
done

# the SARA demo, with the protocol of its own card (50 DiT steps, its vocoder's 2 steps); SARA_BASELINE=0 skips
# it (e.g. while another process scores it)
if [[ "${SARA_BASELINE:-1}" == 1 ]]; then
  if [[ ! -f "$EVAL/reconstruction_steps2/reconstruction.json" ]]; then
    $SARA eval reconstruction --model "$BUNDLED/sara-demo/vocoder" --audio "$EVAL/test_clips" --steps 2 \
      --out "$EVAL/reconstruction_steps2" --no-cache
  fi
  relevance "$BUNDLED/sara-demo" "$EVAL/relevance" --steps 50
fi

for name in $MODELS; do
  if [[ -d "$BUNDLED/$name" ]]; then
    python3 recipes/system_cards.py "$name" --bundle "$BUNDLED/$name" --runs "$RUNS" --manifest "$M" --eval "$EVAL"
  fi
done
