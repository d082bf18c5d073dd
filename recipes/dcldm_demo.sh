#!/usr/bin/env bash
# Train the DC-LDM demo on the open corpus, on CPU, from the latent-diffusion and AudioGen demos:
#
#   bash recipes/dcldm_demo.sh                 # after recipes/ldm_demo.sh and recipes/audiogen_demo.sh
#   STAGES="bundle" bash recipes/dcldm_demo.sh
#
# Stages: dcldm -> bundle -> card.  The UNet starts from the LDM demo's UNet run (the acoustic modules are zero-initialised,
# so step 0 computes the LDM demo exactly) and trains with the acoustic encoding E_t2a of each clip's own codec
# tokens (the AudioGen demo's token cache) at PLACEMENTS (the paper's best: CA-DOWN#1 and CA-UP#1), joint
# condition dropout for guidance; the latent cache is the LDM demo's (real clips only: mixtures have no codec
# tokens).  The flags are those of recipes/dcldm_table1.sh with INIT=<the LDM demo's UNet run>, so the demo is
# that table's run of its placement (the bundled one was: STAGES=bundle with $RUNS/dcldm -> that run folder).
# The token cache was encoded by the codec at float32 (codec_release) and the bundled AudioGen demo stores it in
# float16, whose weights fingerprint differently, so training reads an AudioGen with the float32 codec
# ($AUDIOGEN, assembled here) while the bundle names the float16 one.  The bundle holds only the dual-condition
# UNet (float16) and names the LDM demo's VAE / HiFi-GAN and the AudioGen demo by relative path, so no weights
# are stored twice.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-work}
LDM_RUNS=${LDM_RUNS:-$WORK/runs/ldm_demo}
AG_RUNS=${AG_RUNS:-$WORK/runs/audiogen_demo}
RUNS=${RUNS:-$WORK/runs/dcldm_demo}
BUNDLED=${BUNDLED:-sara/pretrained}
OUT=${OUT:-$BUNDLED/dcldm-demo}
STAGES=${STAGES:-"dcldm bundle card"}
TABLE1=${TABLE1:-$WORK/reports/dcldm_table1}  # the Table 1 report whose dcldm_down1_up1 scores the card quotes
EVAL=${EVAL:-$WORK/eval}
MINUTES=${MINUTES:-40}
MAX_STEPS=${MAX_STEPS:-700}
AUDIOGEN=${AUDIOGEN:-$AG_RUNS/release_fp32}
PLACEMENTS=${PLACEMENTS:-"down1 up1"}
SARA=${SARA:-sara}
PY=${PY:-python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

want() { [[ " $STAGES " == *" $1 "* ]]; }

if want dcldm; then
  if [[ ! -f "$AUDIOGEN/config.json" ]]; then  # the bundled LM with the float32 codec of the token cache
    mkdir -p "$AUDIOGEN/codec"
    cp "$BUNDLED/audiogen-demo/config.json" "$BUNDLED/audiogen-demo/model.safetensors" "$AUDIOGEN/"
    cp "$AG_RUNS/codec_release/config.json" "$AG_RUNS/codec_release/model.safetensors" "$AUDIOGEN/codec/"
  fi
  # shellcheck disable=SC2086  # PLACEMENTS is a word list
  $SARA train dcldm --run-dir "$RUNS/dcldm" --latent-cache "$LDM_RUNS/latents" --init-from "$LDM_RUNS/unet" \
    --audiogen "$AUDIOGEN" --token-cache "$AG_RUNS/tokens" --acoustic-source codec \
    --placement $PLACEMENTS --text-encoder minilm --lr 1e-4 --lr-schedule constant \
    --uncondition-prob 0.1 --batch-size 8 --max-steps "$MAX_STEPS" --max-minutes "$MINUTES" --log-every 20 \
    --ckpt-every 200 --valid-every 400 --vae "$LDM_RUNS/vae_release" --vocoder "$LDM_RUNS/hifigan_release" \
    --no-bundle-audiogen
fi

if want bundle; then
  # DPM-Solver++ 25 steps at 4.16 s (the training length), the paper's w = 4 by default
  $SARA export "$RUNS/dcldm" "$RUNS/dcldm_release" --default-sampler dpmsolver++ --default-steps 25 \
    --default-cfg 4 --default-duration 4.16
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

if want card; then
  # Relevance: the Table 1 evaluation of this very run (127 test captions, one per class, one clip each, DPM-Solver++
  # 25 steps, w 4, float32 weights), which this session's CPU budget allowed instead of the other cards' 446 clips.
  $PY - "$TABLE1/results/dcldm_down1_up1/relevance.json" "$EVAL/dcldm-demo/relevance/relevance.json" \
      "${CLASSIFIER:-$EVAL/classifier}" <<'PY'
import json, sys
from pathlib import Path
src, dst, classifier = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
r = json.loads(src.read_text())
classes = json.loads((Path(classifier) / "config.json").read_text())["config"]["class_names"]
r.update(classifier=classifier, cfg=r["guidance"], samples_per_prompt=1, system="DCLDM", chance=1 / len(classes),
         note=f"dcldm-demo: scored in the Table 1 miniature ({src.parent.name}, the same run before float16 "
              "storage: one clip per caption, one caption per class); the other rows use 2 captions per class "
              "and 2 clips each.")
dst.parent.mkdir(parents=True, exist_ok=True)
dst.write_text(json.dumps(r, indent=1) + "\n")
PY
  RUNS="$WORK/runs" EVAL="$EVAL" MODELS=dcldm-demo SARA_BASELINE=0 bash recipes/systems_eval.sh  # recon., card
fi
