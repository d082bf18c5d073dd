"""Link a fixed, spread-out sample of test clips (every k-th by id) into a directory, for reconstruction scores.

    python recipes/test_clips.py CORPUS_DIR OUT_DIR [--count 48]

The same corpus gives the same clips, so every system's reconstruction table is measured on the same audio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=48)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.corpus, "manifest.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    test = sorted((r for r in rows if r["split"] == "test"), key=lambda r: r["id"])
    for r in test[:: max(1, len(test) // args.count)][: args.count]:
        link = os.path.join(args.out, r["id"].replace("/", "__") + ".wav")
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.path.join(args.corpus, r["path"])), link)


if __name__ == "__main__":
    from sara.cli.guard import run_guarded

    sys.exit(run_guarded("test_clips.py", main))
