"""Decode speed of the latent-diffusion system: mel-VAE decode + HiFi-GAN, per second of 16 kHz audio.

Random weights at the paper size (the AudioLDM VAE and ``HIFIGAN_16K_64`` that Tango uses, 55 M parameters each)
and the small (demo) size.  Latents are ``[B, 8, frames / 4, 16]`` for ``frames = seconds * 100``; the real-time
factor ``rtf = wall seconds / audio seconds`` is reported per stage and in total (``< 1`` is faster than real
time), after one untimed warm-up call.

    python benchmarks/bench_ldm_decode.py [--sizes paper small] [--seconds 10.24] [--batch 1] [--threads 1]
        [--device cpu] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch

from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
from sara.mel.vae import MelVAE, MelVAEConfig


def build(size: str, device: str) -> tuple[MelVAE, HiFiGAN]:
    """Randomly initialised VAE and vocoder of the preset ``size`` ("paper" or "small")."""
    torch.manual_seed(0)
    vae = MelVAE(getattr(MelVAEConfig, size)()).to(device).eval()
    vocoder = HiFiGAN(getattr(HiFiGANConfig, size)()).to(device).eval()
    return vae, vocoder


def seconds_per_call(fn: Callable[[], torch.Tensor], repeats: int, device: str) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls (after one warm-up call), synchronising CUDA."""
    times = []
    for i in range(repeats + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def bench(size: str, seconds: float, batch: int, device: str, repeats: int) -> dict[str, float | str]:
    """Time ``vae.decode`` and ``vocoder`` on ``seconds`` of audio per item; rtf per stage and in total."""
    vae, vocoder = build(size, device)
    f = vae.downsample_factor
    frames = max(f, round(seconds * 100 / f) * f)
    z = torch.randn(batch, vae.latent_channels, frames // f, vae.config.n_mels // f, device=device)
    mel = vae.decode(z)[:, 0]
    t_vae = seconds_per_call(lambda: vae.decode(z), repeats, device)
    t_voc = seconds_per_call(lambda: vocoder(mel), repeats, device)
    audio_s = batch * frames / 100
    params = sum(p.numel() for p in vae.parameters()) + sum(p.numel() for p in vocoder.parameters())
    return {"size": size, "device": device, "params_m": round(params / 1e6, 1), "audio_s": audio_s,
            "vae_s": round(t_vae, 3), "vocoder_s": round(t_voc, 3), "vae_rtf": round(t_vae / audio_s, 4),
            "vocoder_rtf": round(t_voc / audio_s, 4), "total_rtf": round((t_vae + t_voc) / audio_s, 4)}


def main(argv: list[str] | None = None) -> list[dict[str, float | str]]:
    """Run the benchmark for each size and print one JSON line per size."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", choices=("paper", "small", "tiny"), default=["paper", "small"])
    p.add_argument("--seconds", type=float, default=10.24, help="audio per item (10.24 = Tango's clip)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2, help="timed calls per stage (median reported)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = [bench(size, args.seconds, args.batch, args.device, args.repeats) for size in args.sizes]
    for r in results:
        print(json.dumps(r))
    return results


if __name__ == "__main__":
    main()
