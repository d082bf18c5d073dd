"""Configuration of the AudioGen token LM (:class:`~sara.audiogen.lm.TokenLM`).

Values of the released model come from audiocraft's Hydra configs: ``config/model/lm/default.yaml``
(hidden_scale 4, gelu, layer_norm, sinusoidal positions with max_period 10000), ``config/model/lm/audiogen_lm.yaml``
(n_q 4, card 2048, pre-norm, no biases, delay pattern [0, 1, 2, 3]), ``config/model/lm/model_scale/medium.yaml``
(dim 1536, 24 heads, 48 layers; the grid ``audiocraft/grids/audiogen/audiogen_base_16khz.py`` trains ``medium``) and
``config/conditioner/text2sound.yaml`` (T5-large description through cross-attention, CFG dropout 0.1, coef 3).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LMConfig"]


@dataclass(frozen=True)
class LMConfig:
    """Hyper-parameters of the multi-stream token LM.

    Only audiocraft's AudioGen variant is built: pre-norm layers (``norm_first``), LayerNorm (eps 1e-5), GELU (erf)
    feed-forward, causal self-attention, cross-attention to the text, sinusoidal positions, no layer scale, no
    dropout (audiocraft's default 0).

    Attributes:
        dim: transformer width D [transformer_lm.dim].
        num_heads: attention heads (``dim % num_heads == 0``) [num_heads].
        num_layers: transformer layers [num_layers].
        hidden_scale: feed-forward width = ``int(hidden_scale * dim)`` [hidden_scale].
        n_q: codebooks K (parallel token streams) [n_q].
        card: codebook size; embedding tables have ``card + 1`` rows, the last is the special token [card].
        delays: per-codebook delay of the interleaving pattern, sorted [codebooks_pattern.delay.delays].
        text_dim: width of the text-encoder states fed to the conditioner's ``output_proj``
            (1024 for t5-large; 384 for sara's MiniLM demo encoder).
        max_period: period scale of the sinusoidal positions [max_period].
        positional_scale: factor on the sinusoidal positions [positional_scale].
        bias_ff: biases in the feed-forward linears [bias_ff].
        bias_attn: biases in the attention projections [bias_attn].
        bias_proj: biases in the output heads [bias_proj].
        cfg_dropout: training probability of replacing the text by the null condition
            [classifier_free_guidance.training_dropout].
        cfg_coef: default classifier-free guidance coefficient [classifier_free_guidance.inference_coef].
    """

    dim: int = 1536
    num_heads: int = 24
    num_layers: int = 48
    hidden_scale: float = 4.0
    n_q: int = 4
    card: int = 2048
    delays: tuple[int, ...] = (0, 1, 2, 3)
    text_dim: int = 1024
    max_period: float = 10_000.0
    positional_scale: float = 1.0
    bias_ff: bool = False
    bias_attn: bool = False
    bias_proj: bool = False
    cfg_dropout: float = 0.1
    cfg_coef: float = 3.0

    def __post_init__(self) -> None:
        for name in ("dim", "num_heads", "num_layers", "n_q", "card", "text_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim % self.num_heads or self.dim % 2:
            raise ValueError(f"dim {self.dim} must be even and divisible by num_heads {self.num_heads}")
        if self.dim < 4:
            raise ValueError(f"dim must be >= 4 for the sinusoidal positions, got {self.dim}")
        if len(self.delays) != self.n_q or list(self.delays) != sorted(self.delays) or min(self.delays) < 0:
            raise ValueError(f"delays must be {self.n_q} sorted non-negative ints, got {list(self.delays)}")
        if self.ffn_dim < 1:
            raise ValueError(f"hidden_scale {self.hidden_scale} gives an empty feed-forward")
        if not 0.0 <= self.cfg_dropout <= 1.0:
            raise ValueError(f"cfg_dropout must be in [0, 1], got {self.cfg_dropout}")

    @property
    def ffn_dim(self) -> int:
        """Feed-forward hidden width (audiocraft: ``int(hidden_scale * dim)``)."""
        return int(self.hidden_scale * self.dim)

    @property
    def max_delay(self) -> int:
        """Largest codebook delay (3 for AudioGen): the pattern adds this many steps after the last frame."""
        return max(self.delays)

    @classmethod
    def audiogen_medium(cls) -> LMConfig:
        """facebook/audiogen-medium: dim 1536, 24 heads, 48 layers, 4 x 2048 codes, t5-large text (~1.5 B)."""
        return cls()

    @classmethod
    def paper(cls) -> LMConfig:
        """Alias of :meth:`audiogen_medium` (the released model)."""
        return cls.audiogen_medium()

    @classmethod
    def small(cls) -> LMConfig:
        """CPU demo size: dim 256, 4 heads, 4 layers, MiniLM (384-d) text; the 4 x 2048 codes of the 16 kHz codec."""
        return cls(dim=256, num_heads=4, num_layers=4, text_dim=384)

    @classmethod
    def tiny(cls) -> LMConfig:
        """Test size: dim 32, 2 heads, 2 layers, 4 codebooks of 16 codes, 16-d text."""
        return cls(dim=32, num_heads=2, num_layers=2, card=16, text_dim=16)
