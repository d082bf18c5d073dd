"""An independent, deliberately plain re-statement of the official generator's inference (spec B.2/B.3).

It reads weights straight from an official-layout state dict (no sara modules), follows the spec's
wording literally (``view_as_real`` + permute/reshape channel layout, expand/reshape upsampling, the
condition projected inside every block at every step, a fixed ``dt``) and is used to check that sara's
optimised generator (cached condition projections, concatenated channels) computes the same function.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

SD = dict[str, Tensor]


def bias_norm(x: Tensor, sd: SD, p: str) -> Tensor:
    scales = torch.mean((x - sd[p + "bias"][:, None]) ** 2, dim=1, keepdim=True) ** -0.5 * sd[p + "log_scale"].exp()
    return x * scales


def block(x: Tensor, sd: SD, p: str, cond: Tensor | None = None, temb: Tensor | None = None) -> Tensor:
    w = sd[p + "dwconv.weight"]
    h = F.conv1d(x, w, sd[p + "dwconv.bias"], padding=w.shape[-1] // 2, groups=x.shape[1])
    h = bias_norm(h, sd, p + "norm.")
    if cond is not None:
        h = h + F.conv1d(cond, sd[p + "cond_proj.weight"], sd[p + "cond_proj.bias"])
    if temb is not None:
        h = h * (1.0 + F.linear(temb, sd[p + "time_embed_proj.weight"], sd[p + "time_embed_proj.bias"]).unsqueeze(-1))
    h = F.conv1d(h, sd[p + "pwconv1.weight"], sd[p + "pwconv1.bias"])
    h = F.prelu(h, sd[p + "act.weight"])
    h = F.conv1d(h, sd[p + "pwconv2.weight"], sd[p + "pwconv2.bias"])
    return h + x * sd[p + "residual_scale.scale"]


def time_embedding(t: Tensor, dim: int) -> Tensor:
    half = dim // 2
    freqs = torch.exp(torch.arange(half).float() * -(math.log(10000) / (half - 1)))
    arg = 1000 * t.unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat((arg.sin(), arg.cos()), dim=-1)


def convert_length(x: Tensor, n: int) -> Tensor:
    return x[..., :n] if x.shape[-1] >= n else F.pad(x, (0, n - x.shape[-1]))


def _count(sd: SD, prefix: str) -> int:
    return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})


def branch(audio: Tensor, cond: Tensor, t: Tensor, sd: SD, i: int, hop: int, cond_hop: int = 960) -> Tensor:
    p = f"estimators.{i}."
    n_fft = sd[p + "fft.window"].shape[0]
    spec = torch.stft(audio, n_fft, hop, win_length=n_fft, window=torch.hann_window(n_fft), center=True,
                      return_complex=True, onesided=True)
    b, _, frames = spec.shape
    real = torch.view_as_real(spec).permute(0, 3, 1, 2).reshape(b, -1, frames)
    factor = cond_hop // hop
    c = cond.unsqueeze(-1).expand(-1, -1, -1, factor).reshape(b, cond.shape[1], -1)
    c = convert_length(c, frames)
    d = p + "decoder."
    x = bias_norm(F.conv1d(real, sd[d + "in_proj.weight"], sd[d + "in_proj.bias"]), sd, d + "in_norm.")
    dim = sd[d + "time_mlp.0.weight"].shape[1]
    temb = F.linear(time_embedding(t, dim), sd[d + "time_mlp.0.weight"], sd[d + "time_mlp.0.bias"])
    temb = F.linear(F.silu(temb), sd[d + "time_mlp.2.weight"], sd[d + "time_mlp.2.bias"])
    c = F.conv1d(c, sd[d + "cond_mlp.0.weight"], sd[d + "cond_mlp.0.bias"])
    c = F.conv1d(F.prelu(c, sd[d + "cond_mlp.1.weight"]), sd[d + "cond_mlp.2.weight"], sd[d + "cond_mlp.2.bias"])
    for j in range(_count(sd, d + "blocks.")):
        x = block(x, sd, f"{d}blocks.{j}.", c, temb)
    x = F.conv1d(x, sd[d + "out_proj.weight"], sd[d + "out_proj.bias"])
    spec = torch.view_as_complex(x.reshape(b, 2, -1, frames).permute(0, 2, 3, 1).contiguous())
    wav = torch.istft(spec, n_fft, hop, win_length=n_fft, window=torch.hann_window(n_fft), center=True)
    return convert_length(wav, audio.shape[-1])


def decode(sd: SD, latents: Tensor, x0: Tensor, steps: int, hops: tuple[int, ...]) -> Tensor:
    """Official-style Euler decode from the already scaled initial noise ``x0``."""
    x = F.conv1d(latents, sd["cond_encoder.in_proj.weight"], sd["cond_encoder.in_proj.bias"], padding=1)
    cond = bias_norm(x, sd, "cond_encoder.in_norm.")
    for j in range(_count(sd, "cond_encoder.blocks.")):
        cond = block(cond, sd, f"cond_encoder.blocks.{j}.")
    t_span = torch.linspace(0, 1, steps + 1)
    t, dt = t_span[0], t_span[1] - t_span[0]
    x = x0
    for step in range(1, steps + 1):
        tb = t[None, None].expand(x.shape[0], 1).flatten()
        pred = torch.stack([branch(x, cond, tb, sd, i, h) for i, h in enumerate(hops)], dim=1).mean(dim=1)
        x = x + (pred - x) / (1 - t) * dt
        t = t_span[step]
    return x.clamp(-1.0, 1.0)
