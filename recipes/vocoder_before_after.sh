#!/usr/bin/env bash
# A small vocoder trained for a few minutes on CPU, scored on held-out clips before and after training.
#
#   bash recipes/vocoder_before_after.sh      # needs the corpus (recipes/demo.sh stage "corpus")
#
# Stage 1 (flow matching) then stage 2 (fine-tuning through a 2-step sampler, mel loss only) on the
# corpus, with latents computed on the fly by the bundled demo encoder; then
# benchmarks/eval_vocoder.py prints the multi-resolution log-mel distance (lower is better) of each
# release and of a fresh initialisation of the same size, on up to 48 clips of the valid split.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-work}
CORPUS=${CORPUS:-$WORK/corpus}
RUNS=${RUNS:-$WORK/runs_voc_small}
ENC=${ENC:-sara/pretrained/sara-demo/vocoder/encoder}
MINUTES_1=${MINUTES_1:-6}
MINUTES_2=${MINUTES_2:-4}
SARA=${SARA:-sara}
PYTHON=${PYTHON:-python}
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

$SARA train vocoder --run-dir "$RUNS/stage1" --data "$CORPUS/manifest.jsonl" --encoder "$ENC" \
  --preset tiny --channels 64 48 --num-layers 2 2 --cond-channels 64 --batch-size 8 --max-steps 100000 \
  --max-minutes "$MINUTES_1" --ckpt-every 200 --valid-every 400 --log-every 10 --export "$RUNS/stage1_release"
$SARA train vocoder --stage gan --no-adversarial --gan-steps 2 --init "$RUNS/stage1_release" \
  --run-dir "$RUNS/stage2" --data "$CORPUS/manifest.jsonl" --encoder "$ENC" --batch-size 8 --max-steps 100000 \
  --max-minutes "$MINUTES_2" --ckpt-every 200 --valid-every 400 --log-every 10 --export "$RUNS/stage2_release"
$PYTHON benchmarks/eval_vocoder.py --model "$RUNS/stage1_release" --data "$CORPUS/manifest.jsonl" --steps 1 4 16 --init
$PYTHON benchmarks/eval_vocoder.py --model "$RUNS/stage2_release" --data "$CORPUS/manifest.jsonl" --steps 2 --init
