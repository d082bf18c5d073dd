#!/usr/bin/env bash
# The DC-LDM paper's Table 1 (and Figure 2) in miniature, at equal small compute on CPU.
#
#   VAE=... HIFIGAN=... AUDIOGEN=... CLASSIFIER=... bash recipes/dcldm_table1.sh
#   STAGES="eval report" bash recipes/dcldm_table1.sh      # any subset; every stage resumes / skips finished work
#
# Systems (all trained with the same UNet preset, batch, step and wall-time budget; from scratch, or with
# INIT=<LDM release / ldm run> fine-tuned from that text-only UNet, as one would from Tango's weights; the
# acoustic-only LDM always starts from scratch, its cross-attention reads a different width):
#   ldm_text          LDM, text only (sara train ldm: Tango's UNet on MiniLM states)
#   ldm_acoustic      LDM, acoustic encoding only (E_t2a in the UNet's own cross-attention)
#   dcldm_down1       DC-LDM, E_t2a at CA-DOWN#1
#   dcldm_up1         DC-LDM, E_t2a at CA-UP#1
#   dcldm_down1_up1   DC-LDM, E_t2a at both (the paper's best)
#   <best>_mel        the best placement above with E'_t2a (AudioGen audio through the mel VAE)
# Each is evaluated on the corpus test captions (FD / FAD / KL with the offline `mel` and corpus-classifier
# embedders, relevance with the corpus classifier), and the best DC-LDM and the text-only LDM over a guidance
# sweep.  Output: $OUT/table1.md + table1.png + guidance.png.
#
# Needs (releases built by the other recipes): a mel VAE ($VAE), a HiFi-GAN ($HIFIGAN), an AudioGen release with
# its codec ($AUDIOGEN, MiniLM text for the small preset) and the corpus classifier ($CLASSIFIER, from
# `sara eval train-classifier`).  Training tokens: the clips' own codec tokens (ACOUSTIC_SOURCE=codec, default)
# or AudioGen LM tokens per caption (ACOUSTIC_SOURCE=lm).  MAX_STEPS bounds every system equally; MINUTES is only
# a per-session safety cap (a capped run exports what it has; delete its release/ to continue it).
# Smoke run (every stage in ~8 min on 2 cores, meaningless numbers): a 40-clip manifest, tiny VAE / HiFi-GAN /
# AudioGen releases and FRAMES=64 DURATION=0.64 MAX_STEPS=3 BATCH=2 STEPS=2 SWEEP="1 4" PER_CLASS=1.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-work}
CORPUS=${CORPUS:-$WORK/corpus}
MANIFEST=${MANIFEST:-$CORPUS/manifest.jsonl}
RUNS=${RUNS:-$WORK/runs/dcldm_table1}
OUT=${OUT:-$WORK/reports/dcldm_table1}
VAE=${VAE:-$WORK/runs/vae_release}
HIFIGAN=${HIFIGAN:-$WORK/runs/hifigan_release}
AUDIOGEN=${AUDIOGEN:-$WORK/runs/audiogen_release}
CLASSIFIER=${CLASSIFIER:-$WORK/runs/classifier}
STAGES=${STAGES:-"caches ldm_text ldm_acoustic dcldm_down1 dcldm_up1 dcldm_down1_up1 reference eval best_mel sweep report"}
PRESET=${PRESET:-small}
FRAMES=${FRAMES:-256}          # mel frames per training clip (2.56 s)
DURATION=${DURATION:-2.56}     # seconds per evaluated clip
MAX_STEPS=${MAX_STEPS:-4000}   # equal compute: the same steps, batch and wall-time cap for every system
MINUTES=${MINUTES:-60}
BATCH=${BATCH:-8}
LR=${LR:-1e-4}
STEPS=${STEPS:-50}             # DPM-Solver++ steps at evaluation
GUIDANCE=${GUIDANCE:-4}        # the paper's w for DC-LDM (Tango's is 3; one w for every system keeps it equal)
SWEEP=${SWEEP:-"1 2 3 4 5 6"}
SWEEP_TEXT=${SWEEP_TEXT:-1}    # 0: sweep only the best DC-LDM, not also the text-only LDM (halves the sweep's cost)
PER_CLASS=${PER_CLASS:-3}
ACOUSTIC_SOURCE=${ACOUSTIC_SOURCE:-codec}
INIT=${INIT:-}                 # a text-only UNet to fine-tune from (empty: every system from scratch)
SYSTEMS=${SYSTEMS:-"ldm_text ldm_acoustic dcldm_down1 dcldm_up1 dcldm_down1_up1"}  # what the eval stage scores
SARA=${SARA:-sara}
PY=${PY:-python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

want() { [[ " $STAGES " == *" $1 "* ]]; }
for need in "$VAE" "$HIFIGAN" "$AUDIOGEN" "$CLASSIFIER" "$MANIFEST"; do
  [[ -e "$need" ]] || { echo "missing $need (see the header of $0)" >&2; exit 1; }
done
mkdir -p "$RUNS" "$OUT"
LATENTS=${LATENTS:-$RUNS/latents}  # an existing latent cache (e.g. the LDM demo's) skips the cache build
TOKENS=${TOKENS:-$RUNS/tokens_$ACOUSTIC_SOURCE}  # likewise an existing codec token cache

COMMON=(--latent-cache "$LATENTS" --preset "$PRESET" --text-encoder minilm --lr "$LR" --lr-schedule constant
        --vae "$VAE" --vocoder "$HIFIGAN" --batch-size "$BATCH" --max-steps "$MAX_STEPS" --max-minutes "$MINUTES"
        --ckpt-every 200 --valid-every 400 --log-every 20)
FT=(); [[ -n "$INIT" ]] && FT=(--init-from "$INIT")
DCLDM=(--audiogen "$AUDIOGEN" --token-cache "$TOKENS" --acoustic-source "$ACOUSTIC_SOURCE" --no-bundle-audiogen)

# train NAME ARGS...: train into $RUNS/NAME, export $RUNS/NAME/release once (a finished export is kept).
train() {
  local name=$1; shift
  [[ -f "$RUNS/$name/release/config.json" ]] && { echo "$name: trained"; return; }
  "$SARA" train "$@" --run-dir "$RUNS/$name/run" --export "$RUNS/$name/release"
}

if want caches; then  # latent cache (no mixtures: clip tokens exist only for real clips) + training tokens
  $PY recipes/dcldm_report.py caches "${COMMON[@]}" "${DCLDM[@]}" --run-dir "$RUNS/_caches" --data "$MANIFEST" \
    --frames "$FRAMES"
fi
want ldm_text && train ldm_text ldm "${COMMON[@]}" "${FT[@]}" --no-mixtures
want ldm_acoustic && train ldm_acoustic dcldm "${COMMON[@]}" "${DCLDM[@]}" --conditioning acoustic
want dcldm_down1 && train dcldm_down1 dcldm "${COMMON[@]}" "${DCLDM[@]}" "${FT[@]}" --placement down1
want dcldm_up1 && train dcldm_up1 dcldm "${COMMON[@]}" "${DCLDM[@]}" "${FT[@]}" --placement up1
want dcldm_down1_up1 && train dcldm_down1_up1 dcldm "${COMMON[@]}" "${DCLDM[@]}" "${FT[@]}" --placement down1 up1

# generate_eval NAME RESULT_DIR W: test-caption clips of NAME's release at guidance W, relevance, FD/FAD/KL.
generate_eval() {
  local name=$1 dir=$2 w=$3
  $PY recipes/dcldm_report.py generate --model "$RUNS/$name/release" --reference "$OUT/reference" \
    --out "$dir" --classifier "$CLASSIFIER" --guidance "$w" --steps "$STEPS" --duration "$DURATION"
  [[ -f "$dir/eval/generation.json" ]] || "$SARA" eval generation --generated "$dir/audio" \
    --reference "$OUT/reference/audio" --embedder mel --embedder "classifier:$CLASSIFIER" --out "$dir/eval"
}
best_placement() {
  $PY recipes/dcldm_report.py best --results "$OUT/results" --systems dcldm_down1 dcldm_up1 dcldm_down1_up1
}

if want reference; then
  $PY recipes/dcldm_report.py reference --manifest "$MANIFEST" --classifier "$CLASSIFIER" --out "$OUT/reference" \
    --per-class "$PER_CLASS"
fi
if want eval; then
  for name in $SYSTEMS; do
    generate_eval "$name" "$OUT/results/$name" "$GUIDANCE"
  done
fi
if want best_mel; then  # E'_t2a at the best E_t2a placement (the eval stage must have scored the placements,
  # unless MEL_BASE names the placement system to use, e.g. the paper's best dcldm_down1_up1, to train it sooner)
  BEST=${MEL_BASE:-$(best_placement)}
  PLACEMENT=$(grep -o 'down1\|up1' <<<"${BEST#dcldm_}" | tr '\n' ' ')
  # shellcheck disable=SC2086  # PLACEMENT is a word list
  train "${BEST}_mel" dcldm "${COMMON[@]}" "${DCLDM[@]}" "${FT[@]}" --placement $PLACEMENT --acoustic t2a_mel
  generate_eval "${BEST}_mel" "$OUT/results/${BEST}_mel" "$GUIDANCE"
fi
if want sweep; then  # Figure 2: guidance sweep of the best DC-LDM and of the text-only LDM
  BEST=$(best_placement)
  SWEPT=("$BEST"); [[ "$SWEEP_TEXT" == 1 ]] && SWEPT+=(ldm_text)
  for w in $SWEEP; do
    for name in "${SWEPT[@]}"; do
      dir=$OUT/results/$name/w$w
      if [[ "$w" == "$GUIDANCE" && -f "$OUT/results/$name/eval/generation.json" ]]; then  # the main run's scores
        mkdir -p "$dir/eval"
        cp "$OUT/results/$name/relevance.json" "$dir/"
        cp "$OUT/results/$name/eval/generation.json" "$dir/eval/"
      else
        generate_eval "$name" "$dir" "$w"
      fi
    done
  done
fi
if want report; then
  BEST=$(best_placement 2>/dev/null || echo dcldm_down1_up1)
  SWEPT=("$BEST"); [[ "$SWEEP_TEXT" == 1 ]] && SWEPT+=(ldm_text)
  $PY recipes/dcldm_report.py report --results "$OUT/results" --out "$OUT" --sweep "${SWEPT[@]}" --runs "$RUNS" \
    --command "VAE=$VAE HIFIGAN=$HIFIGAN AUDIOGEN=$AUDIOGEN CLASSIFIER=$CLASSIFIER INIT=$INIT LATENTS=$LATENTS \
TOKENS=$TOKENS FRAMES=$FRAMES DURATION=$DURATION MAX_STEPS=$MAX_STEPS BATCH=$BATCH LR=$LR STEPS=$STEPS \
GUIDANCE=$GUIDANCE PER_CLASS=$PER_CLASS SWEEP='$SWEEP' SWEEP_TEXT=$SWEEP_TEXT ${MEL_BASE:+MEL_BASE=$MEL_BASE }\
bash recipes/dcldm_table1.sh"
fi
