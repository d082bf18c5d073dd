"""Configuration of the dasheng-compatible semantic encoder.

The defaults are dasheng_base (arXiv 2406.06992): 16 kHz, 64-bin HTK power mel (n_fft 512, hop 160 = 10 ms),
64x4 patches (one frequency row, 40 ms per token -> 25 tokens/s), 252-token (10.08 s) position table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from sara.errors import ConfigError

__all__ = ["EncoderConfig"]


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of a :class:`~sara.encoder.SemanticEncoder` (field names follow dasheng where possible).

    Attributes:
        embed_dim: token width D (= latent dim).
        depth: number of transformer blocks.
        num_heads: attention heads (``embed_dim`` must be divisible by it).
        mlp_ratio: MLP hidden width / D.
        qkv_bias: bias on the fused qkv projection.
        init_values: LayerScale initial value; None disables LayerScale (dasheng default).
        ln_eps: LayerNorm epsilon (dasheng: ``partial(nn.LayerNorm, eps=1e-6)``).
        target_length: spectrogram frames per chunk; ``target_length // patch_size[1]`` tokens per chunk.
        pooling: ``"mean"`` (no cls token, dasheng default) or ``"token"`` (a cls token is prepended per chunk
            and removed from the output).
        sample_rate: input rate in Hz (the front end is fixed to it; other rates are resampled).
        n_fft: STFT size (= window length) in samples.
        hop_length: STFT hop in samples.
        n_mels: mel bins (must equal ``patch_size[0]``: one frequency patch row).
        f_min: lowest mel edge in Hz.
        f_max: highest mel edge in Hz.
        top_db: dB floor below the (batch-wide) peak.
        patch_size: ``(mel bins, frames)`` per patch; stride equals the size.
        bn_momentum: momentum of the per-mel-bin BatchNorm (only matters while training).
    """

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    init_values: float | None = None
    ln_eps: float = 1e-6
    target_length: int = 1008
    pooling: Literal["mean", "token"] = "mean"
    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 8000.0
    top_db: float | None = 120.0
    patch_size: tuple[int, int] = (64, 4)
    bn_momentum: float = 0.01

    def __post_init__(self) -> None:
        if self.embed_dim <= 0 or self.depth < 0 or self.num_heads <= 0:
            raise ValueError("embed_dim and num_heads must be positive and depth non-negative")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.pooling not in ("mean", "token"):
            raise ValueError(f"pooling must be 'mean' or 'token', got {self.pooling!r}")
        if len(self.patch_size) != 2 or self.patch_size[0] != self.n_mels:
            raise ValueError(f"patch_size[0] must equal n_mels (one frequency row), got {self.patch_size}")
        if self.target_length % self.patch_size[1] or self.target_length <= 0:
            raise ValueError(f"target_length {self.target_length} is not a multiple of {self.patch_size[1]}")
        if not 0.0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= sample_rate/2, got {self.f_min}, {self.f_max}")
        if self.hop_length <= 0 or self.n_fft <= 0:
            raise ValueError("n_fft and hop_length must be positive")

    # ------------------------------------------------------------------ derived quantities

    @property
    def tokens_per_chunk(self) -> int:
        """Tokens per independent chunk (252 for dasheng: 10.08 s)."""
        return self.target_length // self.patch_size[1]

    @property
    def samples_per_token(self) -> int:
        """Input samples per output frame (640 at 16 kHz)."""
        return self.hop_length * self.patch_size[1]

    @property
    def frame_rate(self) -> float:
        """Output frames per second (25.0 for dasheng)."""
        return self.sample_rate / self.samples_per_token

    @property
    def min_samples(self) -> int:
        """Shortest input (samples at ``sample_rate``) giving one frame: 480 (30 ms) for dasheng."""
        return max(self.hop_length * (self.patch_size[1] - 1), self.n_fft // 2 + 1)

    def num_frames(self, num_samples: int) -> int:
        """Output frames for ``num_samples`` input samples: ``floor((1 + T // hop - p) / p) + 1`` (0 if too short)."""
        spec_frames = 1 + num_samples // self.hop_length
        p = self.patch_size[1]
        return max(0, (spec_frames - p) // p + 1)

    # ------------------------------------------------------------------------------ presets

    @classmethod
    def base(cls) -> EncoderConfig:
        """dasheng_base: 768 / 12 layers / 12 heads (85.4 M parameters)."""
        return cls()

    @classmethod
    def b06(cls) -> EncoderConfig:
        """dasheng 0.6B: 1280 / 32 layers / 16 heads."""
        return cls(embed_dim=1280, depth=32, num_heads=16)

    @classmethod
    def b12(cls) -> EncoderConfig:
        """dasheng 1.2B: 1536 / 40 layers / 24 heads."""
        return cls(embed_dim=1536, depth=40, num_heads=24)

    @classmethod
    def paper(cls) -> EncoderConfig:
        """The size the SemanticVocoder paper uses (dasheng_base)."""
        return cls.base()

    @classmethod
    def small(cls) -> EncoderConfig:
        """A CPU-trainable encoder: 384 / 6 layers / 6 heads (~11 M parameters), same front end."""
        return cls(embed_dim=384, depth=6, num_heads=6)

    @classmethod
    def tiny(cls) -> EncoderConfig:
        """Tests and smoke runs: 32 / 2 layers / 2 heads, 100-token (4 s) chunks."""
        return cls(embed_dim=32, depth=2, num_heads=2, target_length=400)

    @classmethod
    def preset(cls, name: str) -> EncoderConfig:
        """Preset by name: ``base``/``paper``, ``0.6B``/``b06``, ``1.2B``/``b12``, ``small``, ``tiny``."""
        table = {"base": cls.base, "paper": cls.paper, "0.6b": cls.b06, "b06": cls.b06, "06b": cls.b06,
                 "1.2b": cls.b12, "b12": cls.b12, "12b": cls.b12, "small": cls.small, "tiny": cls.tiny}
        key = name.lower()
        if key not in table:
            raise ConfigError(f"unknown encoder preset {name!r}; choose from base, 0.6B, 1.2B, small, tiny")
        return table[key]()

    def replace(self, **changes: object) -> EncoderConfig:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]
