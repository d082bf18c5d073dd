"""Configuration of :class:`~sara.dit.model.LatentDiT` (the official UDiT with cross-attention to text)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DiTConfig", "FRAME_RATE"]

FRAME_RATE = 25.0  # latent frames per second (Dasheng output rate)


@dataclass(frozen=True)
class DiTConfig:
    """Hyper-parameters of the latent DiT.  Names follow ours; :mod:`sara.dit.official` maps the official
    UDiT constructor arguments onto them (in brackets below).

    Attributes:
        latent_dim: latent channels C of ``x [B, C, T]`` [in_chans].
        patch_size: frames per token [patch_size].
        max_length: longest latent in frames; sizes 'abs'/'sinu' positional tables (``max_length //
            patch_size`` entries) and bounds the pipeline's duration [img_size].
        dim: transformer width D [embed_dim].
        depth: blocks = ``2 * (depth // 2) + 1`` (in, mid, out) [depth].
        num_heads: attention heads [num_heads].
        mlp_ratio: MLP hidden width = ``int(dim * mlp_ratio)`` [mlp_ratio].
        act: MLP activation; ``geglu*`` doubles the first projection [act_layer].
        norm: block normalisation: LayerNorm(eps 1e-5) or RMSNorm(eps 1e-6, weight only) [norm_layer].
        qkv_bias: bias on the q/k/v projections [qkv_bias].
        qk_norm: per-head normalisation of q and k over head_dim [qk_norm].
        time_fusion: AdaLN variant [time_fusion].
        ada_rank: low-rank width r of the 'ada_sola*' update (LoRA width 6r) [ada_sola_rank].
        ada_alpha: LoRA scale numerator (scale = alpha / r; None -> scale 1) [ada_sola_alpha].
        context_dim: width of the (projected) text states fed to the backbone [context_dim].
        context_norm: normalise the context inside each cross-attention [context_norm].
        context_max_length: size of the context positional table [context_max_length].
        context_pe: positional embedding added to the embedded context [context_pe_method].
        pe: positional embedding added to the latent tokens [pe_method].
        rope: rotary embedding in self-attention ('shared' == 'x_only' here: no prefix tokens) [rope_mode].
        use_conv: final 3-tap Conv1d after unpatchify [use_conv].
        skip: U-shaped long skips [skip].
        skip_norm: normalise ``cat[x, skip]`` before the skip projection [skip_norm].
        text_dim: width of the raw text-encoder states; when set, a trainable ``text_proj``
            Linear(text_dim -> context_dim) lives in the model (official: the text encoder's ``proj``).
        pooled_text: *sara extension, not in the official UDiT* (default off, so official weights load
            unchanged): the masked mean of the projected text states, through a 2-layer MLP whose last layer
            starts at zero, is added to the timestep embedding, so every AdaLN modulation sees the prompt
            (global conditioning, as DiT does with class labels).  Cross-attention alone learns slowly
            from a cold start on small data: its zero-initialised output sees nearly uniform attention over
            the tokens shared by most captions.
    """

    latent_dim: int = 768
    patch_size: int = 1
    max_length: int = 750
    dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    act: Literal["gelu", "gelu-approximate", "geglu", "geglu-approximate"] = "geglu"
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    qkv_bias: bool = False
    qk_norm: Literal["layernorm", "rmsnorm"] | None = "layernorm"
    time_fusion: Literal["ada", "ada_single", "ada_sola", "ada_sola_bias"] = "ada_sola_bias"
    ada_rank: int | None = 32
    ada_alpha: float | None = 32.0
    context_dim: int = 1024
    context_norm: bool = True
    context_max_length: int = 512
    context_pe: Literal["none", "abs", "sinu"] = "none"
    pe: Literal["none", "abs", "sinu"] = "none"
    rope: Literal["none", "shared", "x_only"] = "shared"
    use_conv: bool = True
    skip: bool = True
    skip_norm: bool = True
    text_dim: int | None = 1024
    pooled_text: bool = False

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.rope != "none" and (self.dim // self.num_heads) % 2:
            raise ValueError("rotary embeddings need an even head dimension")
        if self.time_fusion.startswith("ada_sola") and not self.ada_rank:
            raise ValueError(f"time_fusion {self.time_fusion!r} needs ada_rank")
        if self.max_length < self.patch_size or self.max_length % self.patch_size:
            raise ValueError(f"max_length {self.max_length} must be a positive multiple of patch_size")
        for name in ("latent_dim", "patch_size", "dim", "depth", "num_heads", "context_dim", "context_max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def max_tokens(self) -> int:
        """Token positions available (patches)."""
        return self.max_length // self.patch_size

    @property
    def max_seconds(self) -> float:
        """Longest duration the model accepts, in seconds."""
        return self.max_length / FRAME_RATE

    @classmethod
    def paper(cls) -> DiTConfig:
        """Official-like: width 1024, 24 layers, 16 heads, GEGLU, q/k LayerNorm, AdaLN-SOLA (+bias) r=32,
        cross-attention to FLAN-T5-large states, shared RoPE, no absolute PE, up to 30 s."""
        return cls()

    @classmethod
    def small(cls) -> DiTConfig:
        """~25 M parameters, MiniLM (384-d) text states: trainable on one GPU in hours."""
        return cls(dim=384, depth=8, num_heads=6, ada_rank=16, ada_alpha=16.0, context_dim=384, text_dim=384)

    @classmethod
    def tiny(cls) -> DiTConfig:
        """Test-sized model (width 32, 3 blocks), MiniLM text states."""
        return cls(dim=32, depth=2, num_heads=2, mlp_ratio=2.0, ada_rank=2, ada_alpha=2.0, context_dim=32,
                   text_dim=384, max_length=500)
