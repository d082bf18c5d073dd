"""LatentDiT: a U-shaped diffusion transformer over semantic latents, compatible with the official UDiT.

Legend: ``B`` batch, ``C`` latent channels (768), ``T`` latent frames (25 Hz), ``p`` patch size,
``L = T / p`` tokens, ``D`` width, ``S`` text tokens.  Timesteps follow the official convention: raw values
in [0, 1000] where 1000 is pure noise (sigma = t / 1000).

Architecture (SemanticVocoder, arXiv 2602.23333; UDiT/AdaLN-SOLA): Conv1d patch embedding, cos-first
timestep embedding, AdaLN modulation with a shared projection + per-block low-rank update and ``(1 - gate)``
residuals, cross-attention to text with key masks, LIFO long skips, final FiLM + linear + conv.

Training memory: :meth:`LatentDiT.set_gradient_checkpointing` recomputes each block in the backward pass
instead of keeping its activations (``benchmarks/bench_train_paper.py`` measures the saving).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from sara.dit.blocks import DiTBlock, FinalBlock, PositionalEmbedding, TimestepEmbedder
from sara.dit.config import DiTConfig
from sara.errors import SaraError
from sara.serialization import PretrainedMixin

__all__ = ["LatentDiT", "TextContext"]


@dataclass
class TextContext:
    """Text conditioning prepared once per prompt batch and reused at every sampling step.

    Attributes:
        kv: per block (in, mid, out order) the cross-attention ``(k, v)``, each ``[B, H, S, hd]``.
        mask: ``[B, S]`` bool key mask (True = real token) or None.
        pooled: ``[B, D]`` pooled-text embedding added to the timestep embedding (``config.pooled_text``),
            else None.
    """

    kv: list[tuple[Tensor, Tensor]]
    mask: Tensor | None
    pooled: Tensor | None = None


class _PatchEmbed(nn.Module):
    def __init__(self, in_dim: int, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv1d(in_dim, dim, kernel_size=patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, T] -> [B, T / p, D]``."""
        return self.proj(x).transpose(1, 2)


class LatentDiT(PretrainedMixin, nn.Module):
    """Text-conditioned velocity model ``dit(x, t, context, context_mask) -> v``.

    Args:
        config: the :class:`DiTConfig`.
    """

    config_class = DiTConfig

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = cfg = config
        d = cfg.dim
        self.text_proj = nn.Linear(cfg.text_dim, cfg.context_dim) if cfg.text_dim is not None else None
        self.patch_embed = _PatchEmbed(cfg.latent_dim, d, cfg.patch_size)
        self.x_pe = PositionalEmbedding(cfg.pe, cfg.max_tokens, d) if cfg.pe != "none" else None
        self.context_embed = nn.Sequential(nn.Linear(cfg.context_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.context_pe = (PositionalEmbedding(cfg.context_pe, cfg.context_max_length, d)
                           if cfg.context_pe != "none" else None)
        self.time_embed = TimestepEmbedder(d)
        self.pooled_text_embed = (nn.Sequential(nn.Linear(cfg.context_dim, d), nn.SiLU(), nn.Linear(d, d))
                                  if cfg.pooled_text else None)
        self.time_ada_final = nn.Linear(d, 2 * d)
        self.time_ada = nn.Linear(d, 6 * d) if cfg.time_fusion != "ada" else None
        half = cfg.depth // 2
        self.in_blocks = nn.ModuleList([DiTBlock(cfg, with_skip=False) for _ in range(half)])
        self.mid_block = DiTBlock(cfg, with_skip=False)
        self.out_blocks = nn.ModuleList([DiTBlock(cfg, with_skip=cfg.skip) for _ in range(half)])
        self.final_block = FinalBlock(cfg)
        self.gradient_checkpointing = False
        self.reset_parameters()

    # ------------------------------------------------------------------------------------ init / io

    def reset_parameters(self) -> None:
        """Training init: xavier Linear/patch conv, zero AdaLN projections and cross-attention outputs."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.proj.bias)
        zero = [self.time_ada_final, self.time_ada]
        if self.pooled_text_embed is not None:
            zero.append(self.pooled_text_embed[2])
        for block in self.blocks:
            zero += [block.cross_attn.proj, getattr(block.adaln, "lora_b", None), getattr(block.adaln, "time_ada", None)]
            if hasattr(block.adaln, "lora_a"):
                nn.init.kaiming_uniform_(block.adaln.lora_a.weight, a=5 ** 0.5)
        for module in zero:
            if module is not None:
                nn.init.zeros_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if self.final_block.final_layer is not None:
            nn.init.xavier_uniform_(self.final_block.final_layer.weight)
            nn.init.zeros_(self.final_block.final_layer.bias)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute each block's activations in the backward pass while training (non-reentrant
        ``torch.utils.checkpoint``): activation memory of one block instead of all, for about one more
        forward pass.  Outputs and gradients are unchanged."""
        self.gradient_checkpointing = bool(enabled)

    @property
    def blocks(self) -> list[DiTBlock]:
        """All blocks in execution order (in, mid, out)."""
        return [*self.in_blocks, self.mid_block, *self.out_blocks]

    @classmethod
    def from_pretrained(cls, path: str | Path, *, map_location: str | torch.device = "cpu") -> LatentDiT:
        """Load a release directory written by :meth:`save_pretrained`."""
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        return cls.from_release(path, map_location=map_location)

    @classmethod
    def from_official(cls, backbone_config: dict, state_dict: dict[str, Tensor]) -> LatentDiT:
        """Build from the official UDiT constructor arguments and weights (see :mod:`sara.dit.official`)."""
        from sara.dit.official import dit_from_official

        return dit_from_official(backbone_config, state_dict)

    # --------------------------------------------------------------------------------- conditioning

    def project_text(self, states: Tensor) -> Tensor:
        """Raw text-encoder states ``[B, S, text_dim]`` -> backbone context ``[B, S, context_dim]``."""
        if self.text_proj is None:
            return states
        return self.text_proj(states.to(self.text_proj.weight.dtype))

    def drop_unseen(self, x: Tensor) -> Tensor:
        """Remove from ``x [B, C, T]`` the per-patch components the patch embedding cannot see.

        The latents enter the network only through the patch embedding, a linear map from ``C * p`` values
        per patch to ``dim``.  When ``dim < C * p`` (e.g. a 192-wide DiT on 256-d latents) its null space is
        invisible: the model cannot predict the noise there, so sampling carries the initial noise in those
        directions unchanged into the output (measured: 64 of 256 dimensions, which made generated latents
        about 8x rougher in time than real ones).  Applied to the initial noise, this changes nothing the
        network computes and leaves the model's own estimate (the integrated data mean) in those directions:
        the sample moves by exactly the removed noise.  Full-rank models (official sizes) are returned as is.
        """
        w = self.patch_embed.proj.weight.detach().double().reshape(self.config.dim, -1)  # [D, C * p]
        if w.shape[0] >= w.shape[1] and torch.linalg.matrix_rank(w) == w.shape[1]:
            return x
        null = torch.eye(w.shape[1], dtype=w.dtype, device=w.device) - torch.linalg.pinv(w) @ w
        b, c, t = x.shape
        p = self.config.patch_size
        patches = x.double().reshape(b, c, t // p, p).permute(0, 2, 1, 3).reshape(b, t // p, c * p)
        patches = patches - patches @ null.T
        return patches.reshape(b, t // p, c, p).permute(0, 2, 1, 3).reshape(b, c, t).to(x.dtype)

    def prepare_context(self, context: Tensor, context_mask: Tensor | None = None) -> TextContext:
        """Embed the (projected) context and compute every block's cross-attention keys/values once.

        Args:
            context: ``[B, S, context_dim]``.
            context_mask: ``[B, S]`` bool (True = real token) or None.
        """
        if self.context_pe is not None and context.shape[1] > self.context_pe.length:
            raise SaraError(f"prompt too long: {context.shape[1]} tokens, this model takes at most "
                            f"{self.context_pe.length}")
        ctx = self.context_embed(context.to(self.context_embed[0].weight.dtype))
        if self.context_pe is not None:
            ctx = self.context_pe(ctx)
        mask = None if context_mask is None else context_mask.to(device=ctx.device, dtype=torch.bool)
        pooled = None
        if self.pooled_text_embed is not None:
            pooled = self.pooled_text_embed(_masked_mean(context.to(ctx.dtype), mask))
        return TextContext(kv=[block.context_kv(ctx) for block in self.blocks], mask=mask, pooled=pooled)

    # -------------------------------------------------------------------------------------- forward

    def forward(self, x: Tensor, t: Tensor | float, context: Tensor | None = None,
                context_mask: Tensor | None = None, *, x_mask: Tensor | None = None,
                text: TextContext | None = None) -> Tensor:
        """Predict the velocity ``noise - data``.

        Args:
            x: ``[B, C, T]`` noisy latents (``T`` a multiple of the patch size).
            t: ``[B]`` timesteps in [0, 1000] (float); a 0-dim tensor is expanded and truncated to integers
                like the official backbone does at inference.
            context: ``[B, S, context_dim]`` projected text states (ignored when ``text`` is given).
            context_mask: ``[B, S]`` bool, True on real tokens.
            x_mask: ``[B, T]`` bool valid frames (self-attention key mask; one flag per patch is used).
            text: a :meth:`prepare_context` result to reuse (cached cross-attention keys/values).

        Returns:
            ``[B, C, T]`` velocity.
        """
        if text is None:
            if context is None:
                raise ValueError("LatentDiT needs `context` or a prepared `text`")
            text = self.prepare_context(context, context_mask)
        h = self._embed_latents(x)
        time_token, shared, final_ada = self._time_modulation(t, x.shape[0], x.device, text.pooled)
        tok_mask = None if x_mask is None else x_mask[:, :: self.config.patch_size].to(torch.bool)
        h = self._run_blocks(h, time_token, shared, text, tok_mask)
        return self.final_block(h, final_ada)

    def _embed_latents(self, x: Tensor) -> Tensor:
        """``[B, C, T] -> [B, L, D]`` with positional embedding."""
        cfg = self.config
        if x.dim() != 3 or x.shape[1] != cfg.latent_dim:
            raise ValueError(f"expected latents [B, {cfg.latent_dim}, T], got {tuple(x.shape)}")
        if x.shape[-1] % cfg.patch_size:
            raise SaraError(f"latent length {x.shape[-1]} is not a multiple of the patch size {cfg.patch_size}")
        h = self.patch_embed(x.to(self.patch_embed.proj.weight.dtype))
        return h if self.x_pe is None else self.x_pe(h)

    def _time_modulation(self, t: Tensor | float, batch: int, device: torch.device, pooled: Tensor | None = None
                         ) -> tuple[Tensor, Tensor | None, Tensor]:
        """Timesteps (+ pooled text ``[B, D]``) -> (time token ``[B, D]``, shared AdaLN ``[B, 6D]`` or None,
        final FiLM ``[B, 2D]``)."""
        t = torch.as_tensor(t, device=device)
        if t.dim() == 0:
            t = t.expand(batch).long()  # official inference path: truncates e.g. 999.88 -> 999
        emb = self.time_embed(t)
        if pooled is not None:
            emb = emb + pooled
        time_token = torch.nn.functional.silu(emb)
        shared = self.time_ada(time_token) if self.time_ada is not None else None
        return time_token, shared, self.time_ada_final(time_token)

    def _run_blocks(self, h: Tensor, time_token: Tensor, shared: Tensor | None, text: TextContext,
                    x_mask: Tensor | None) -> Tensor:
        """in blocks (push skips) -> mid block -> out blocks (pop skips, last pushed first)."""
        kv = iter(text.kv)
        skips: list[Tensor] = []
        run = self._run_block
        for block in self.in_blocks:
            h = run(block, h, time_token, shared, next(kv), text.mask, x_mask)
            skips.append(h)
        h = run(self.mid_block, h, time_token, shared, next(kv), text.mask, x_mask)
        for block in self.out_blocks:
            skip = skips.pop() if self.config.skip else None
            h = run(block, h, time_token, shared, next(kv), text.mask, x_mask, skip)
        return h

    def _run_block(self, block: DiTBlock, h: Tensor, time_token: Tensor, shared: Tensor | None,
                   kv: tuple[Tensor, Tensor], mask: Tensor | None, x_mask: Tensor | None,
                   skip: Tensor | None = None) -> Tensor:
        """``block(h, ...)``, under a non-reentrant checkpoint when checkpointing is on and gradients flow."""
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, h, time_token, shared, kv, mask, x_mask, skip, use_reentrant=False)
        return block(h, time_token, shared, kv, mask, x_mask, skip=skip)


def _masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over tokens of ``x [B, S, E]`` where ``mask [B, S]`` is True (all tokens when None) -> ``[B, E]``."""
    if mask is None:
        return x.mean(1)
    w = mask.to(x.dtype)[..., None]
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)
