"""Independent numpy references (from the spec's formulas) and an official-format dasheng checkpoint builder."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn


def htk_mel_fb(n_fft: int = 512, n_mels: int = 64, sr: int = 16000, f_min: float = 0.0, f_max: float = 8000.0) -> np.ndarray:
    """Triangular HTK mel filterbank ``[n_fft//2+1, n_mels]`` (no area normalisation), float64."""
    def hz2mel(f):  # noqa: ANN001, ANN202
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel2hz(m):  # noqa: ANN001, ANN202
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sr // 2, n_fft // 2 + 1)
    edges = mel2hz(np.linspace(hz2mel(f_min), hz2mel(f_max), n_mels + 2))
    fb = np.zeros((len(freqs), n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rising = (freqs - lo) / (mid - lo)
        falling = (hi - freqs) / (hi - mid)
        fb[:, m] = np.maximum(0.0, np.minimum(rising, falling))
    return fb


def power_mel(wav: np.ndarray, n_fft: int = 512, hop: int = 160) -> np.ndarray:
    """Centred, reflect-padded periodic-Hann power mel ``[B, 64, 1 + T // hop]`` in float64."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    padded = np.pad(wav, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    n = 1 + wav.shape[-1] // hop
    frames = np.stack([padded[:, k * hop : k * hop + n_fft] for k in range(n)], axis=1)  # [B, N, n_fft]
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2  # [B, N, F]
    return np.einsum("bnf,fm->bmn", power, htk_mel_fb(n_fft))


def db(power: np.ndarray, top_db: float = 120.0, batch_wide: bool = True) -> np.ndarray:
    """10 log10(max(p, 1e-10)) floored at (peak - top_db); peak over the whole batch or per item."""
    out = 10.0 * np.log10(np.maximum(power, 1e-10))
    peak = out.max() if batch_wide else out.max(axis=(1, 2), keepdims=True)
    return np.maximum(out, peak - top_db)


def official_config(embed_dim: int = 768, depth: int = 12, num_heads: int = 12, **extra: object) -> dict:
    """A config dict laid out like dasheng's ``AudioTransformerMAE_Encoder`` kwargs."""
    return {
        "patch_size": [64, 4], "patch_stride": [64, 4], "embed_dim": embed_dim, "depth": depth,
        "num_heads": num_heads, "mlp_ratio": 4.0, "qkv_bias": True, "drop_rate": 0.0, "attn_drop_rate": 0.0,
        "norm_layer": functools.partial(nn.LayerNorm, eps=1e-6), "act_layer": nn.GELU, "init_values": None,
        "target_length": 1008, "pooling": "mean", "time_patch_out": None, "freq_patch_out": None,
        "block_type": "Block", "attention_type": "Attention", "eval_avg": "cat", "n_fft": 512, "n_mels": 64,
        "hop_size": 160, "win_size": 512, "f_min": 0, "f_max": 8000, "center": True, **extra,
    }


def official_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` plus the two front-end buffers dasheng stores (computed here independently)."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    n = np.arange(512)
    sd["front_end.0.spectrogram.window"] = torch.tensor(0.5 - 0.5 * np.cos(2 * np.pi * n / 512), dtype=torch.float32)
    sd["front_end.0.mel_scale.fb"] = torch.tensor(htk_mel_fb(), dtype=torch.float32)
    return sd


def save_official(path: Path, model: nn.Module, config: dict) -> Path:
    """Write ``{"model": state_dict, "config": config}`` with ``torch.save`` (the Zenodo layout)."""
    torch.save({"model": official_state_dict(model), "config": config}, path)
    return path


def randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Give ``init_bn`` non-trivial running stats/affine so the normalisation is actually exercised."""
    g = torch.Generator().manual_seed(seed)
    bn = model.init_bn[1]
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(64, generator=g) * 10 - 40)
        bn.running_var.copy_(torch.rand(64, generator=g) * 200 + 50)
        bn.weight.copy_(1 + 0.1 * torch.randn(64, generator=g))
        bn.bias.copy_(0.1 * torch.randn(64, generator=g))


def reference_forward(sd: dict[str, torch.Tensor], wav: np.ndarray, num_heads: int, chunk_tokens: int = 252) -> np.ndarray:
    """Dasheng forward written from the spec with plain float64 ops on an official state dict.

    ``wav [B, T]`` at 16 kHz -> ``[B, L, D]``.  Batch-wide top_db, eval-mode BatchNorm, independent chunks.
    """
    w = {k: v.double() for k, v in sd.items()}
    x = torch.from_numpy(db(power_mel(wav)))  # [B, F, N]
    mean, var = w["init_bn.1.running_mean"], w["init_bn.1.running_var"]
    x = (x - mean[:, None]) / torch.sqrt(var[:, None] + 1e-5) * w["init_bn.1.weight"][:, None] + w["init_bn.1.bias"][:, None]
    b, f, n = x.shape
    length = (n - 4) // 4 + 1
    patches = x[..., : length * 4].reshape(b, f, length, 4).permute(0, 2, 1, 3).reshape(b, length, f * 4)
    kernel = w["patch_embed.proj.weight"].reshape(w["patch_embed.proj.weight"].shape[0], -1)  # [D, F*4]
    tokens = patches @ kernel.T + w["patch_embed.proj.bias"]
    depth = len({k.split(".")[1] for k in w if k.startswith("blocks.")})
    outs = []
    for start in range(0, length, chunk_tokens):
        h = tokens[:, start : start + chunk_tokens]
        h = h + w["time_pos_embed"][0, :, 0, : h.shape[1]].T + w["freq_pos_embed"][0, :, 0, 0]
        for i in range(depth):
            h = h + _ref_attention(_ref_ln(h, w, f"blocks.{i}.norm1"), w, f"blocks.{i}.attn", num_heads)
            hidden = torch.nn.functional.gelu(_ref_ln(h, w, f"blocks.{i}.norm2") @ w[f"blocks.{i}.mlp.fc1.weight"].T
                                              + w[f"blocks.{i}.mlp.fc1.bias"])
            h = h + hidden @ w[f"blocks.{i}.mlp.fc2.weight"].T + w[f"blocks.{i}.mlp.fc2.bias"]
        outs.append(_ref_ln(h, w, "norm"))
    return torch.cat(outs, dim=1).numpy()


def _ref_ln(x: torch.Tensor, w: dict, name: str) -> torch.Tensor:
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-6) * w[f"{name}.weight"] + w[f"{name}.bias"]


def _ref_attention(x: torch.Tensor, w: dict, name: str, heads: int) -> torch.Tensor:
    b, n, d = x.shape
    qkv = x @ w[f"{name}.qkv.weight"].T + w[f"{name}.qkv.bias"]
    q, k, v = (qkv[..., i * d : (i + 1) * d].reshape(b, n, heads, d // heads).transpose(1, 2) for i in range(3))
    attn = torch.softmax(q @ k.transpose(-1, -2) * (d // heads) ** -0.5, dim=-1)
    return (attn @ v).transpose(1, 2).reshape(b, n, d) @ w[f"{name}.proj.weight"].T + w[f"{name}.proj.bias"]
