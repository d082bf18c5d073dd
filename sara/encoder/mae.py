"""Dasheng-style masked-autoencoder pretraining and a clip-label classification head.

MAE (He et al. 2022, as dasheng uses it): embed all 64x4 patches of a crop (<= one chunk), keep a random 25 %
per sample (argsort of uniform noise), encode only those, then a light decoder (``input_proj`` ->
``mask_token`` fill + unshuffle -> learned ``pos_embed`` -> blocks -> ``outputlayer`` to 64*4 values)
predicts every patch of the dB mel (before ``init_bn``), each target patch standardised (norm_pix_loss);
the MSE is averaged over masked patches only.

Shapes: ``B`` batch, ``T`` samples (16 kHz), ``F`` mel bins, ``L`` patches/tokens, ``K`` kept tokens,
``D`` encoder width, ``E`` decoder width, ``P = F * 4`` values per patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sara.encoder.blocks import Block
from sara.encoder.encoder import SemanticEncoder

__all__ = ["ClipClassifier", "MAEOutput", "MaskedAutoencoder", "decoder_defaults", "patchify", "random_masking"]


def decoder_defaults(embed_dim: int, depth: int) -> tuple[int, int, int]:
    """Decoder ``(width, depth, heads)``: dasheng's 512/8/16 (768/8/24 from width 1536), scaled down below 768."""
    if embed_dim >= 1536:
        return 768, 8, 24
    if embed_dim >= 768:
        return 512, 8, 16
    width = max(16, (embed_dim * 2 // 3) // 16 * 16)
    return width, max(1, min(8, depth // 2)), max(1, width // 32)


def random_masking(x: Tensor, mask_ratio: float) -> tuple[Tensor, Tensor, Tensor]:
    """Keep a random ``int(L * (1 - mask_ratio))`` tokens per sample.

    Args:
        x: tokens ``[B, L, D]``.
        mask_ratio: fraction masked.

    Returns:
        ``(kept [B, K, D], mask [B, L] with 1 = masked, ids_restore [B, L])``.
    """
    b, length, d = x.shape
    keep = max(1, int(length * (1.0 - mask_ratio)))
    noise = torch.rand(b, length, device=x.device)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    kept = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
    mask = torch.ones(b, length, device=x.device)
    mask[:, :keep] = 0.0
    return kept, torch.gather(mask, 1, ids_restore), ids_restore


def patchify(db: Tensor, patch_frames: int) -> Tensor:
    """dB mel ``[B, F, N]`` -> patches ``[B, L, F * patch_frames]`` (``L = N // patch_frames``; the tail is dropped)."""
    b, f, n = db.shape
    length = n // patch_frames
    x = db[..., : length * patch_frames].reshape(b, f, length, patch_frames)
    return x.permute(0, 2, 1, 3).reshape(b, length, f * patch_frames)


@dataclass
class MAEOutput:
    """``loss`` (scalar), ``pred``/``target`` ``[B, L, P]``, ``mask`` ``[B, L]`` (1 = masked)."""

    loss: Tensor
    pred: Tensor
    target: Tensor
    mask: Tensor


class MaskedAutoencoder(nn.Module):
    """``encoder`` (a :class:`SemanticEncoder`) plus dasheng's MAE decoder."""

    def __init__(
        self,
        encoder: SemanticEncoder,
        decoder_dim: int,
        decoder_depth: int,
        decoder_heads: int,
        *,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = True,
    ) -> None:
        super().__init__()
        cfg = encoder.config
        self.encoder = encoder
        self.mask_ratio, self.norm_pix_loss = mask_ratio, norm_pix_loss
        self.input_proj = nn.Linear(cfg.embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, decoder_dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.tokens_per_chunk + 1, decoder_dim))  # slot 0 unused (cls)
        self.blocks = nn.ModuleList(Block(decoder_dim, decoder_heads, 4.0, True, None, cfg.ln_eps)
                                    for _ in range(decoder_depth))
        self.norm = nn.LayerNorm(decoder_dim, eps=cfg.ln_eps)
        self.outputlayer = nn.Linear(decoder_dim, cfg.n_mels * cfg.patch_size[1])

    def encode_masked(self, db: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """dB mel ``[B, F, N]`` -> ``(latent [B, K, D], mask [B, L], ids_restore [B, L])``."""
        enc = self.encoder
        p = enc.config.patch_size[1]
        length = db.shape[-1] // p
        if length > enc.config.tokens_per_chunk:
            raise ValueError(f"MAE crop gives {length} tokens, more than one chunk ({enc.config.tokens_per_chunk})")
        spec = enc.normalize_spec(db[..., : length * p])
        tokens = enc.embed_chunk(enc.patch_embed(spec))
        kept, mask, ids_restore = random_masking(tokens, self.mask_ratio)
        return enc.run_blocks(kept), mask, ids_restore

    def decode(self, latent: Tensor, ids_restore: Tensor) -> Tensor:
        """``latent [B, K, D]`` -> patch predictions ``[B, L, P]`` in the original token order."""
        x = self.input_proj(latent)
        b, k, e = x.shape
        length = ids_restore.shape[1]
        x = torch.cat([x, self.mask_token.expand(b, length - k, -1)], dim=1)
        x = torch.gather(x, 1, ids_restore[..., None].expand(-1, -1, e))
        x = x + self.pos_embed[:, 1 : length + 1]
        for block in self.blocks:
            x = block(x)
        return self.outputlayer(self.norm(x))

    def loss(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """Per-patch MSE (targets standardised if ``norm_pix_loss``) averaged over masked patches."""
        if self.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = (pred - target).pow(2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum().clamp(min=1.0)

    def forward(self, wav: Tensor) -> MAEOutput:
        """``wav [B, T]`` at 16 kHz -> :class:`MAEOutput`."""
        db = self.encoder.mel_db(wav)
        latent, mask, ids_restore = self.encode_masked(db)
        pred = self.decode(latent, ids_restore)
        target = patchify(db, self.encoder.config.patch_size[1])
        return MAEOutput(self.loss(pred, target, mask), pred, target, mask)


class ClipClassifier(nn.Module):
    """``encoder`` + ``outputlayer`` (LayerNorm, Linear) on mean-pooled latents (the dasheng_audioset recipe)."""

    def __init__(self, encoder: SemanticEncoder, num_classes: int) -> None:
        super().__init__()
        d = encoder.config.embed_dim
        self.encoder = encoder
        self.outputlayer = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, num_classes))

    def forward(self, wav: Tensor) -> Tensor:
        """``wav [B, T]`` at 16 kHz -> logits ``[B, num_classes]``."""
        return self.outputlayer(self.encoder(wav).mean(dim=1))
