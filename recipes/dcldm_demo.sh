#!/usr/bin/env bash
# Train the DC-LDM demo on the open corpus, on CPU, from the latent-diffusion and AudioGen demos:
#
#   bash recipes/dcldm_demo.sh                 # after recipes/ldm_demo.sh and recipes/audiogen_demo.sh
#   STAGES="bundle" bash recipes/dcldm_demo.sh
#
# Stages: dcldm -> bundle.  The UNet starts from the LDM demo's UNet run (the acoustic modules are zero-initialised,
# so step 0 computes the LDM demo exactly) and trains with the acoustic encoding E_t2a of each clip's own codec
# tokens (the AudioGen demo's token cache) at PLACEMENTS (the paper's best: CA-DOWN#1 and CA-UP#1), joint
# condition dropout for guidance; the latent cache is the LDM demo's (real clips only: mixtures have no codec
# tokens).  The bundle holds only the dual-condition UNet (float16) and names the LDM demo's VAE / HiFi-GAN and
# the AudioGen demo by relative path, so no weights are stored twice.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-work}
LDM_RUNS=${LDM_RUNS:-$WORK/runs/ldm_demo}
AG_RUNS=${AG_RUNS:-$WORK/runs/audiogen_demo}
RUNS=${RUNS:-$WORK/runs/dcldm_demo}
BUNDLED=${BUNDLED:-sara/pretrained}
OUT=${OUT:-$BUNDLED/dcldm-demo}
STAGES=${STAGES:-"dcldm bundle"}
MINUTES=${MINUTES:-60}
PLACEMENTS=${PLACEMENTS:-"down1 up1"}
SARA=${SARA:-sara}
PY=${PY:-python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

want() { [[ " $STAGES " == *" $1 "* ]]; }

if want dcldm; then
  # shellcheck disable=SC2086  # PLACEMENTS is a word list
  $SARA train dcldm --run-dir "$RUNS/dcldm" --latent-cache "$LDM_RUNS/latents" --init-from "$LDM_RUNS/unet" \
    --audiogen "$BUNDLED/audiogen-demo" --token-cache "$AG_RUNS/tokens" --acoustic-source codec \
    --placement $PLACEMENTS --text-encoder minilm --lr 1e-4 --warmup-steps 100 --lr-schedule constant \
    --uncondition-prob 0.1 --batch-size 8 --max-steps 100000 --max-minutes "$MINUTES" --log-every 20 \
    --ckpt-every 200 --valid-every 500 --vae "$LDM_RUNS/vae_release" --vocoder "$LDM_RUNS/hifigan_release" \
    --no-bundle-audiogen
fi

if want bundle; then
  $SARA export "$RUNS/dcldm" "$RUNS/dcldm_release"
  $PY - "$RUNS/dcldm_release" "$OUT" <<'PY'
import sys
from sara import DCLDM
from sara.half import store_half
release, out = sys.argv[1], sys.argv[2]
DCLDM.from_pretrained(release).save_pretrained(
    out, links={"vae": "../ldm-demo/vae", "vocoder": "../ldm-demo/vocoder", "audiogen": "../audiogen-demo"})
print(store_half(out))
PY
  echo "wrote $OUT"
fi
