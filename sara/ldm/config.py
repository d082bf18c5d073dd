"""The Tango UNet configuration (a diffusers ``UNet2DConditionModel``), as a frozen dataclass.

Field names are exactly the keys of declare-lab/tango ``configs/diffusion_model_config.json`` (the UNet
``AudioDiffusion`` builds with ``UNet2DConditionModel.from_config``), so a Tango JSON round-trips through
:meth:`UNetConfig.from_diffusers_dict` / :meth:`UNetConfig.to_diffusers_kwargs` unchanged.

Note ``attention_head_dim``: because of an old diffusers naming mistake, ``UNet2DConditionModel`` reads this
key as the **number of heads** per block when ``num_attention_heads`` is not given (the comment next to
``num_attention_heads = num_attention_heads or attention_head_dim`` in diffusers'
``models/unets/unet_2d_condition.py``).  Tango's ``[5, 10, 20, 20]`` on widths ``[320, 640, 1280, 1280]``
therefore means 64-dimensional heads everywhere.  We keep the key name so Tango's JSON loads as is.

Latent layout (Tango): ``[B, 8, T/4, 16]`` for a ``[B, 1, T, 64]`` log-mel (the AudioLDM VAE downsamples both
axes by 4); 1024 mel frames (10.24 s) give ``[B, 8, 256, 16]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sara.errors import ConfigError
from sara.serialization import config_from_dict

__all__ = ["DOWN_BLOCKS", "UP_BLOCKS", "UNetConfig"]

DOWN_BLOCKS = ("CrossAttnDownBlock2D", "DownBlock2D")
UP_BLOCKS = ("CrossAttnUpBlock2D", "UpBlock2D")
# informational keys of a diffusers config.json that are not constructor arguments
_META_KEYS = ("_class_name", "_diffusers_version", "_name_or_path")


@dataclass(frozen=True)
class UNetConfig:
    """Constructor arguments of the diffusers ``UNet2DConditionModel`` used by Tango.

    Attributes:
        in_channels / out_channels: latent channels (8 for the AudioLDM VAE).
        block_out_channels: width of each resolution level; every level but the last halves ``H`` and ``W``.
        down_block_types / up_block_types: diffusers block class names, one per level.
        layers_per_block: resnet (+ transformer) layers per down block (up blocks have one more).
        attention_head_dim: **number of heads** per level (diffusers' legacy reading, see the module doc).
        cross_attention_dim: width of the text states (1024 = FLAN-T5-large, 2048 = FLAN-T5-XL, 384 = MiniLM).
        norm_num_groups / norm_eps: GroupNorm settings; act_fn: activation ("silu").
        use_linear_projection: Linear (not 1x1 conv) in/out projections of the transformers (SD-2 style).
        upcast_attention: compute attention scores in float32.
        flip_sin_to_cos / freq_shift: sinusoidal timestep-embedding layout.
        downsample_padding / mid_block_scale_factor / center_input_sample / dual_cross_attention /
            only_cross_attention / num_class_embeds: as in diffusers (Tango's values by default).
        sample_size: informational only (Tango writes ``[32, 2]``); the UNet accepts any latent size whose
            sides are divisible by ``2 ** (levels - 1)`` (other sizes also work through diffusers' upsample-size
            forwarding).
    """

    in_channels: int = 8
    out_channels: int = 8
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    down_block_types: tuple[str, ...] = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    up_block_types: tuple[str, ...] = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
    layers_per_block: int = 2
    attention_head_dim: tuple[int, ...] = (5, 10, 20, 20)
    cross_attention_dim: int = 1024
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    act_fn: str = "silu"
    use_linear_projection: bool = True
    upcast_attention: bool = True
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    downsample_padding: int = 1
    mid_block_scale_factor: float = 1.0
    center_input_sample: bool = False
    dual_cross_attention: bool = False
    only_cross_attention: bool = False
    num_class_embeds: int | None = None
    sample_size: tuple[int, ...] = (32, 2)

    def __post_init__(self) -> None:
        levels = len(self.block_out_channels)
        if levels < 1 or min(self.block_out_channels) < 1:
            raise ValueError(f"block_out_channels must be positive widths, got {self.block_out_channels}")
        for name in ("down_block_types", "up_block_types", "attention_head_dim"):
            if len(getattr(self, name)) != levels:
                raise ValueError(f"{name} needs {levels} entries (one per block_out_channels), "
                                 f"got {len(getattr(self, name))}")
        _check_names(self.down_block_types, DOWN_BLOCKS, "down_block_types")
        _check_names(self.up_block_types, UP_BLOCKS, "up_block_types")
        for name in ("in_channels", "out_channels", "layers_per_block", "cross_attention_dim", "norm_num_groups"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for width, heads in zip(self.block_out_channels, self.attention_head_dim, strict=True):
            if heads < 1 or width % heads:
                raise ValueError(f"attention_head_dim (heads) {heads} must divide the block width {width}")
            if width % self.norm_num_groups:
                raise ValueError(f"norm_num_groups {self.norm_num_groups} must divide the block width {width}")

    # ------------------------------------------------------------------------------------ presets
    @classmethod
    def tango(cls) -> UNetConfig:
        """declare-lab/tango ``configs/diffusion_model_config.json`` (866M parameters, FLAN-T5-large text)."""
        return cls()

    @classmethod
    def paper(cls) -> UNetConfig:
        """Alias of :meth:`tango` (the project's preset naming)."""
        return cls.tango()

    @classmethod
    def tango_xl(cls) -> UNetConfig:
        """``configs/diffusion_model_xl_config.json``: the same UNet for FLAN-T5-XL states (2048-d)."""
        return cls(cross_attention_dim=2048)

    @classmethod
    def small(cls) -> UNetConfig:
        """A CPU-trainable demo UNet (6.3M parameters) for 384-d MiniLM states: Tango's layout at 1/10 width
        with one layer per block and 32-d heads (2.8x faster per step than the 24M 1/5-width variant)."""
        return cls(block_out_channels=(32, 64, 128, 128), attention_head_dim=(1, 2, 4, 4), layers_per_block=1,
                   cross_attention_dim=384, norm_num_groups=16, sample_size=(64, 16))

    @classmethod
    def tiny(cls) -> UNetConfig:
        """Test size: two levels of width 16/32, one layer each, 32-d text (0.2M parameters)."""
        return cls(block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                   up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
                   attention_head_dim=(2, 4), cross_attention_dim=32, norm_num_groups=8, sample_size=(16, 4))

    # ----------------------------------------------------------------------------- diffusers dicts
    @classmethod
    def from_diffusers_dict(cls, data: Mapping[str, Any]) -> UNetConfig:
        """Build from a diffusers ``config.json`` dict such as Tango's ``diffusion_model_config.json``.

        ``_class_name`` (must be ``UNet2DConditionModel`` when present) and ``_diffusers_version`` are accepted
        and dropped.

        Raises:
            ConfigError: another class, unknown keys (named), or values :meth:`__post_init__` rejects.
        """
        cls_name = data.get("_class_name", "UNet2DConditionModel")
        if cls_name != "UNet2DConditionModel":
            raise ConfigError(f"UNet config: _class_name {cls_name!r} is not 'UNet2DConditionModel'")
        body = {k: v for k, v in data.items() if k not in _META_KEYS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ConfigError(f"UNet config: unknown keys {unknown}")
        return config_from_dict(cls, body)

    @classmethod
    def from_unet(cls, unet: Any) -> UNetConfig:
        """The config of a built diffusers UNet (``unet.config`` holds every constructor argument)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return config_from_dict(cls, {k: v for k, v in dict(unet.config).items() if k in known})

    def to_diffusers_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``UNet2DConditionModel`` (lists where diffusers' JSON has lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @property
    def num_levels(self) -> int:
        """Resolution levels; the latent sides shrink by ``2 ** (num_levels - 1)`` inside the UNet."""
        return len(self.block_out_channels)


def _check_names(names: tuple[str, ...], allowed: tuple[str, ...], field: str) -> None:
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"{field}: unsupported block types {bad} (expected {list(allowed)})")
