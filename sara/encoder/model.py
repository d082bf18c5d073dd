"""Dasheng audio ViT encoder (arXiv 2406.06992) with the official parameter names.

Pipeline: 16 kHz waveform -> power mel (64 HTK bins) -> dB (top_db) -> per-mel-bin BatchNorm ->
64x4 patches (1 frequency row, 25 tokens/s) -> split into independent chunks of ``tokens_per_chunk`` tokens
(252 = 10.08 s), each with position embeddings restarting at 0 -> pre-norm ViT blocks -> final LayerNorm.

Shapes: ``B`` batch, ``T`` samples at 16 kHz, ``F`` mel bins, ``N`` spectrogram frames, ``L`` tokens, ``D`` width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sara.encoder.blocks import Block
from sara.encoder.config import EncoderConfig
from sara.encoder.frontend import DbScope, build_front_end, build_init_bn

__all__ = ["DashengEncoder", "PatchEmbed"]


class PatchEmbed(nn.Module):
    """``proj = Conv2d(1, D, patch, stride=patch)``: ``[B, 1, F, N] -> [B, D, 1, N // 4]``."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class DashengEncoder(nn.Module):
    """The dasheng encoder; ``state_dict()`` keys equal the official ones minus the two DSP buffers."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = cfg = config
        d = cfg.embed_dim
        self.front_end = build_front_end(cfg)
        self.init_bn = build_init_bn(cfg)
        self.patch_embed = PatchEmbed(cfg)
        self.time_pos_embed = nn.Parameter(torch.randn(1, d, 1, cfg.tokens_per_chunk) * 0.02)
        self.freq_pos_embed = nn.Parameter(torch.randn(1, d, 1, 1) * 0.02)
        if cfg.pooling == "token":
            self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
            self.token_pos_embed = nn.Parameter(torch.randn(1, d) * 0.02)
        self.blocks = nn.ModuleList(
            Block(d, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.init_values, cfg.ln_eps) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.apply(_init_weights)

    # -------------------------------------------------------------------------------- front end

    def mel_db(self, wav: Tensor, db_scope: DbScope = "batch") -> Tensor:
        """``wav [B, T]`` (16 kHz) -> dB mel ``[B, F, N]`` (the MAE target, before ``init_bn``)."""
        with torch.autocast(wav.device.type, enabled=False):
            return self.front_end[1](self.front_end[0](wav.float()), db_scope)

    def normalize_spec(self, db: Tensor) -> Tensor:
        """dB mel ``[B, F, N]`` -> BatchNorm'ed ``[B, 1, F, N]``."""
        return self.init_bn(db.unsqueeze(1))

    # ------------------------------------------------------------------------------ transformer

    def embed_chunk(self, patches: Tensor) -> Tensor:
        """Patch grid ``[B, D, 1, L]`` (``L <= tokens_per_chunk``) -> tokens ``[B, L, D]`` with positions."""
        length = patches.shape[-1]
        x = patches + self.time_pos_embed[..., :length] + self.freq_pos_embed
        return x.flatten(2).transpose(1, 2)

    def run_blocks(self, tokens: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """Tokens ``[B, L, D]`` (+ optional cls token) -> final-LayerNorm output ``[B, L, D]``.

        Args:
            tokens: ``[B, L, D]`` embedded tokens.
            key_mask: ``[B, L]`` True at padded positions (keys only are masked).
        """
        if self.config.pooling == "token":
            cls = (self.cls_token + self.token_pos_embed[:, None]).expand(tokens.shape[0], -1, -1)
            tokens = torch.cat([cls, tokens], dim=1)
            if key_mask is not None:
                key_mask = torch.cat([key_mask.new_zeros(key_mask.shape[0], 1), key_mask], dim=1)
        for block in self.blocks:
            tokens = block(tokens, key_mask)
        tokens = self.norm(tokens)
        return tokens[:, 1:] if self.config.pooling == "token" else tokens

    def forward_spectrogram(self, spec: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """Normalised spectrogram ``[B, 1, F, N]`` -> latents ``[B, L, D]``, ``L = (N - 4) // 4 + 1``.

        Tokens are processed in independent chunks of ``tokens_per_chunk`` (each patch-embedded on its own
        frames, which equals slicing the full patch grid because patches do not overlap); ``key_mask [B, L]``
        is split the same way.
        """
        step, p = self.config.tokens_per_chunk, self.config.patch_size[1]
        num_tokens = max(0, (spec.shape[-1] - p) // p + 1)
        out = None  # written chunk by chunk (no list + concatenation: one output-sized buffer for long inputs)
        for start in range(0, num_tokens, step):
            chunk_mask = None if key_mask is None else key_mask[:, start : start + step]
            grid = self.patch_embed(spec[..., start * p : (start + step) * p])
            chunk = self.run_blocks(self.embed_chunk(grid), chunk_mask)
            if out is None:
                out = chunk.new_empty(chunk.shape[0], num_tokens, chunk.shape[-1])
            out[:, start : start + chunk.shape[1]] = chunk
        return out if out is not None else spec.new_zeros(spec.shape[0], 0, self.config.embed_dim)

    def padding_mask(self, lengths: Tensor, num_tokens: int) -> Tensor:
        """``lengths [B]`` in 16 kHz samples -> ``[B, L]`` True at tokens ``>= floor(len / 640)``."""
        valid = torch.div(lengths, self.config.samples_per_token, rounding_mode="floor")
        return torch.arange(num_tokens, device=lengths.device)[None, :] >= valid[:, None]

    def forward(self, wav: Tensor, lengths: Tensor | None = None, *, db_scope: DbScope = "batch") -> Tensor:
        """Official dasheng forward.

        Args:
            wav: ``[B, T]`` waveform at ``config.sample_rate`` (16 kHz).
            lengths: optional ``[B]`` valid samples per item; padded tokens are masked as keys.
            db_scope: ``"batch"`` reproduces torchaudio's batch-wide top_db floor; ``"item"`` is per item.

        Returns:
            ``[B, L, D]`` latents at 25 Hz (``L = (1 + T // 160 - 4) // 4 + 1``).
        """
        spec = self.normalize_spec(self.mel_db(wav, db_scope))
        mask = None
        if lengths is not None:
            mask = self.padding_mask(lengths.to(wav.device), self.config.num_frames(wav.shape[-1]))
        return self.forward_spectrogram(spec, mask)


def _init_weights(module: nn.Module) -> None:
    """ViT init: truncated-normal(0.02) linears/convs with zero bias, unit LayerNorm."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
