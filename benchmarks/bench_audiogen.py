"""AudioGen LM generation speed: key/value-cached decoding vs recomputing the whole prefix at every step.

Both generate the same tokens (greedy decoding makes that checkable) with classifier-free guidance (the batch is
doubled); tokens/s counts ``frames x codebooks`` generated codes per second of wall time.  The cache makes each
step one incremental forward; without it step ``s`` re-runs ``s`` positions, so the cost grows quadratically.

    python benchmarks/bench_audiogen.py [--preset small] [--frames 500] [--batch 1] [--threads 1] [--skip-uncached]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from sara.audiogen.config import LMConfig
from sara.audiogen.generation import SamplingConfig, generate_codes
from sara.audiogen.lm import TokenLM


def build(preset: str, seed: int = 0) -> TokenLM:
    """A randomly initialised LM of the preset size."""
    torch.manual_seed(seed)
    return TokenLM(getattr(LMConfig, preset)()).eval()


def timed(lm: TokenLM, frames: int, batch: int, use_cache: bool) -> tuple[torch.Tensor, float]:
    """``(codes [B, K, frames], seconds)`` of one greedy CFG generation."""
    g = torch.Generator().manual_seed(0)
    states = torch.randn(batch, 12, lm.config.text_dim, generator=g)
    mask = torch.ones(batch, 12, dtype=torch.long)
    start = time.perf_counter()
    codes = generate_codes(lm, states, mask, frames, SamplingConfig(cfg_coef=3.0, greedy=True), use_cache=use_cache)
    return codes, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print a JSON line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=("paper", "small", "tiny"), default="small")
    p.add_argument("--frames", type=int, default=500, help="frames to generate (500 = 10 s at 50 Hz)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-uncached", action="store_true", help="only time the cached path")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    lm = build(args.preset)
    tokens = args.frames * lm.config.n_q * args.batch
    cached, t_cached = timed(lm, args.frames, args.batch, use_cache=True)
    result = {"preset": args.preset, "params_m": round(sum(p.numel() for p in lm.parameters()) / 1e6, 2),
              "frames": args.frames, "cached_s": round(t_cached, 2), "cached_tok_s": round(tokens / t_cached, 1)}
    if not args.skip_uncached:
        plain, t_plain = timed(lm, args.frames, args.batch, use_cache=False)
        result.update({"uncached_s": round(t_plain, 2), "uncached_tok_s": round(tokens / t_plain, 1),
                       "speedup": round(t_plain / t_cached, 1), "same_tokens": bool(torch.equal(cached, plain))})
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
