#!/usr/bin/env bash
# Data for the paper-size models: AudioCaps + WavCaps -> one sara manifest -> dasheng latents (sharded fp16
# store, encoded on all GPUs) -> WebDataset shards holding audio, captions and latents.
#
#   AUDIOCAPS=/data/audiocaps WAVCAPS=/data/wavcaps ENCODER=/ckpt/dasheng_base.pt bash recipes/paper_data.sh
#   DRY_RUN=1 bash recipes/paper_data.sh          # print the commands only
#
# Expected layout (what the download tools write; see `sara data prepare --help`):
#   $AUDIOCAPS/{train,val,test}.csv and $AUDIOCAPS/audio/{train,val,test}/<youtube_id>.wav ('Y' prefixes and
#   start-time suffixes are recognised); $WAVCAPS/json_files/<Subset>/*_final.json and $WAVCAPS/<Subset>_flac/.
# WavCaps' AudioSet_SL subset contains AudioCaps clips, test clips included: drop those (e.g. by youtube id)
# before training a model that you evaluate on the AudioCaps test set.
# Every stage resumes or skips finished work; see recipes/PAPER_SETUP.md for the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

AUDIOCAPS=${AUDIOCAPS:-data/audiocaps}
WAVCAPS=${WAVCAPS:-data/wavcaps}
ENCODER=${ENCODER:-data/dasheng_base.pt}  # zenodo.org/records/11511780 (spec A.5); the vocoder and DiT share it
WORK=${WORK:-work/paper}
NGPU=${NGPU:-8}
SHARD_SIZE=${SHARD_SIZE:-1000}
STAGES=${STAGES:-"prepare encode shard"}
SARA=${SARA:-sara}
WAVCAPS_SUBSETS=${WAVCAPS_SUBSETS:-"AudioSet_SL:as BBC_Sound_Effects:bbc FreeSound:fsd SoundBible:sb"}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

want() { [[ " $STAGES " == *" $1 "* ]]; }
run() { echo "+ $*"; [[ -n ${DRY_RUN:-} ]] || "$@"; }
MANIFEST=$WORK/manifest.jsonl

if want prepare && { [[ ! -s $MANIFEST ]] || [[ -n ${DRY_RUN:-} ]]; }; then
  run mkdir -p "$WORK"
  run $SARA data prepare audiocaps --csv "$AUDIOCAPS/train.csv" --audio-dir "$AUDIOCAPS/audio/train" -o "$MANIFEST" \
    --split train
  run $SARA data prepare audiocaps --csv "$AUDIOCAPS/val.csv" --audio-dir "$AUDIOCAPS/audio/val" -o "$MANIFEST" \
    --split valid --append
  run $SARA data prepare audiocaps --csv "$AUDIOCAPS/test.csv" --audio-dir "$AUDIOCAPS/audio/test" -o "$MANIFEST" \
    --split test --append
  for entry in $WAVCAPS_SUBSETS; do
    subset=${entry%%:*} prefix=${entry##*:}
    run $SARA data prepare wavcaps --json "$WAVCAPS/json_files/$subset/${prefix}_final.json" \
      --audio-dir "$WAVCAPS/${subset}_flac" -o "$MANIFEST" --split train --append
  done
fi

if want encode; then  # dasheng latents [768, 25 Hz] of every clip, fp16, sharded; resumable, one GPU per process
  run torchrun --standalone --nproc_per_node "$NGPU" -m sara.cli encode --manifest "$MANIFEST" --encoder "$ENCODER" \
    --device cuda -o "$WORK/latents" --split train valid
fi

if want shard; then  # audio as stored + manifest record + latents, $SHARD_SIZE clips per tar
  run $SARA data shard "$MANIFEST" "$WORK/shards" --shard-size "$SHARD_SIZE" --latent-cache "$WORK/latents" \
    --split train valid
fi
