"""DualConditionUNet: the Tango UNet plus acoustic cross-attention after chosen cross-attention transformers.

DC-LDM (Wang et al., "Text-to-Audio Generation via Bridging Audio Language Model and Latent Diffusion") keeps
the text as the UNet's own cross-attention context and adds, right after the cross-attention layers of chosen
positions, extra modules attending to AudioGen's acoustic encoding, joined by a skip connection.

Each extra module is one full diffusers ``Transformer2DModel`` (GroupNorm, input projection, self-attention,
cross-attention to the acoustic states with ``cross_attention_dim = acoustic_dim``, GEGLU feed-forward, output
projection, plus the transformer's own residual: that residual *is* the skip connection), with the heads, head
width, GroupNorm groups, ``use_linear_projection`` and ``upcast_attention`` of the transformer it follows.  Its
output projection is zero-initialised, so ``x + proj_out(...) == x`` exactly and the wrapped model computes the
Tango UNet's function bit for bit until training moves it.

Positions (names checked by the issue): ``down1`` = every transformer of ``unet.down_blocks[0].attentions``
(CA-DOWN#1), ``mid`` = ``unet.mid_block.attentions`` (CA-MID), ``up1`` = ``unet.up_blocks[-1].attentions``
(CA-UP#1, the last cross-attention up block).  Parameters added on the Tango UNet (865.93M), counted on the
meta device by :func:`count_added_parameters`: down1 +4.27M (870.2M), up1 +6.41M (872.3M), mid +33.12M
(899.1M), down1+up1 +10.68M (876.6M); the paper reports 873M / 875M for single placements, +33M at CA-MID and
+11M (877M) for down1 & up1.

Mechanism (DCLDM.md 5.7): a ``register_forward_hook`` on each hooked ``Transformer2DModel`` replaces
``output[0]`` by ``extra(output[0], acoustic_states, acoustic_mask)``.  Because the UNet blocks append that
output to their skip list *and* feed it to the next layer, the acoustic update reaches both paths.  The acoustic
context is held on the wrapper only for the duration of one :meth:`DualConditionUNet.forward`, so no
``cross_attention_kwargs`` are needed (which diffusers would warn about on every attention layer).

State dict: ``unet.<diffusers names>`` + ``acoustic.<position>.<i>.<Transformer2DModel names>`` (e.g.
``acoustic.down1.0.transformer_blocks.0.attn2.to_k.weight``).  A release (:meth:`save_pretrained`) is
``config.json`` (class ``DualConditionUNet``: the UNet config, the placements, the acoustic width) +
``model.safetensors``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sara.errors import CheckpointError, ConfigError
from sara.ldm.config import UNetConfig
from sara.serialization import (
    config_from_dict,
    config_to_dict,
    load_release,
    load_state_dict_strict,
    save_release,
)

__all__ = ["PLACEMENTS", "RELEASE_CLASS", "DualConditionUNet", "check_placements", "count_added_parameters",
           "hooked_transformers"]

PLACEMENTS: tuple[str, ...] = ("down1", "mid", "up1")
RELEASE_CLASS = "DualConditionUNet"


def check_placements(placements: Sequence[str]) -> tuple[str, ...]:
    """``placements`` as a tuple in UNet order (down1, mid, up1), each at most once.

    Raises:
        ConfigError: an unknown or repeated name (one line).
    """
    names = tuple(placements)
    bad = [p for p in names if p not in PLACEMENTS]
    if bad or len(set(names)) != len(names) or isinstance(placements, str):
        raise ConfigError(f"placements must be distinct names from {list(PLACEMENTS)}, got {list(names)}")
    return tuple(p for p in PLACEMENTS if p in names)


def hooked_transformers(unet: Any, placement: str) -> list[nn.Module]:
    """The cross-attention ``Transformer2DModel`` modules of ``placement`` in ``unet`` (UNet order).

    Raises:
        ConfigError: the UNet has no cross-attention transformers there.
    """
    block = {"down1": lambda: unet.down_blocks[0], "mid": lambda: unet.mid_block,
             "up1": lambda: unet.up_blocks[-1]}[placement]()
    attentions = list(getattr(block, "attentions", None) or [])
    if not attentions:
        raise ConfigError(f"placement {placement!r}: {type(block).__name__} has no cross-attention transformers")
    return attentions


def _acoustic_transformer(block: nn.Module, acoustic_dim: int) -> nn.Module:
    """A ``Transformer2DModel`` shaped like ``block`` but attending to ``acoustic_dim``-wide states, with a
    zero output projection (the module is then the identity)."""
    from diffusers.models import Transformer2DModel

    c = block.config
    extra = Transformer2DModel(
        num_attention_heads=c.num_attention_heads, attention_head_dim=c.attention_head_dim,
        in_channels=c.in_channels, num_layers=c.num_layers, norm_num_groups=c.norm_num_groups,
        cross_attention_dim=acoustic_dim, use_linear_projection=c.use_linear_projection,
        upcast_attention=c.upcast_attention, activation_fn="geglu", norm_eps=c.norm_eps,
    )
    nn.init.zeros_(extra.proj_out.weight)
    nn.init.zeros_(extra.proj_out.bias)
    return extra


class _AcousticHook:
    """Forward hook of one hooked transformer: ``output[0] -> extra(output[0], acoustic context)``.

    A class, not a closure, so ``copy.deepcopy`` of the wrapper (the training loop's EMA copy) rebinds it to the
    copy's own wrapper and module.
    """

    def __init__(self, owner: DualConditionUNet, extra: nn.Module) -> None:
        self.owner, self.extra = owner, extra

    def __call__(self, _module: nn.Module, _args: Any, output: Any) -> Any:
        context = self.owner._context
        if context is None:
            raise ConfigError("DualConditionUNet: its UNet was called directly; call the wrapper instead")
        states, mask = context
        hidden = output[0] if isinstance(output, tuple) else output.sample
        new = self.extra(hidden, encoder_hidden_states=states.to(hidden.dtype), encoder_attention_mask=mask,
                         return_dict=False)[0]
        if isinstance(output, tuple):
            return (new, *output[1:])
        output.sample = new
        return output


class DualConditionUNet(nn.Module):
    """A diffusers ``UNet2DConditionModel`` with acoustic cross-attention modules at ``placements``.

    Args:
        unet: the text-conditioned UNet (Tango's; registered as ``self.unet``).
        placements: any of ``"down1"``, ``"mid"``, ``"up1"`` (stored in UNet order).
        acoustic_dim: width ``D`` of the acoustic states (128 for AudioGen's E_t2a).

    Forward: ``(sample [B, C, H, W], timestep, encoder_hidden_states [B, L, D_text], encoder_attention_mask=
    [B, L] bool, acoustic_states=[B, F, D], acoustic_mask=[B, F] bool) -> UNet2DConditionOutput`` (``.sample``
    ``[B, C, H, W]``), exactly what the UNet returns.  With ``placements=()`` it is the UNet.
    """

    def __init__(self, unet: nn.Module, placements: Sequence[str] = ("down1", "up1"), acoustic_dim: int = 128) -> None:
        super().__init__()
        if isinstance(acoustic_dim, bool) or not isinstance(acoustic_dim, int) or acoustic_dim < 1:
            raise ConfigError(f"acoustic_dim must be a positive integer, got {acoustic_dim!r}")
        if getattr(unet, "_dcldm_wrapped", False):
            raise ConfigError("this UNet is already wrapped by a DualConditionUNet (call .unwrap() on that one first)")
        self.unet = unet
        self.placements = check_placements(placements)
        self.acoustic_dim = int(acoustic_dim)
        self.acoustic = nn.ModuleDict({
            p: nn.ModuleList([_acoustic_transformer(b, self.acoustic_dim) for b in hooked_transformers(unet, p)])
            for p in self.placements})
        self._context: tuple[Tensor, Tensor | None] | None = None
        self._hooks = [block.register_forward_hook(_AcousticHook(self, extra))
                       for p in self.placements
                       for block, extra in zip(hooked_transformers(unet, p), self.acoustic[p], strict=True)]

        unet._dcldm_wrapped = True

    def unwrap(self) -> nn.Module:
        """Remove the hooks and return the plain UNet (the acoustic modules stay on this wrapper)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []
        self.unet._dcldm_wrapped = False
        return self.unet

    # ------------------------------------------------------------------------------------ views
    @property
    def config(self) -> Any:
        """The wrapped UNet's diffusers config (``in_channels``, ``cross_attention_dim``, ...)."""
        return self.unet.config

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype of the UNet."""
        return next(self.unet.parameters()).dtype

    def acoustic_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the added modules only (``acoustic.*``)."""
        return self.acoustic.parameters()

    def num_added_parameters(self) -> int:
        """Parameters of the added modules."""
        return sum(p.numel() for p in self.acoustic_parameters())

    # ------------------------------------------------------------------------------------ forward
    def forward(self, sample: Tensor, timestep: Tensor | float | int, encoder_hidden_states: Tensor, *,
                acoustic_states: Tensor | None = None, acoustic_mask: Tensor | None = None, **unet_kwargs: Any) -> Any:
        """The UNet's forward with the acoustic context active (see the class docstring).

        Args:
            sample / timestep / encoder_hidden_states / **unet_kwargs: as ``UNet2DConditionModel.forward``.
            acoustic_states: ``[B, F, acoustic_dim]`` (required when there are placements).
            acoustic_mask: ``[B, F]`` bool, True on real frames (None: all frames).

        Raises:
            ConfigError: missing or mis-shaped acoustic states.
        """
        if not self.placements:
            return self.unet(sample, timestep, encoder_hidden_states, **unet_kwargs)
        self._check_acoustic(acoustic_states, acoustic_mask, sample.shape[0])
        self._context = (acoustic_states, acoustic_mask)
        try:
            return self.unet(sample, timestep, encoder_hidden_states, **unet_kwargs)
        finally:
            self._context = None

    def _check_acoustic(self, states: Tensor | None, mask: Tensor | None, batch: int) -> None:
        if states is None or states.ndim != 3 or states.shape[0] != batch or states.shape[2] != self.acoustic_dim:
            shape = None if states is None else list(states.shape)
            raise ConfigError(f"acoustic_states must be [{batch}, F, {self.acoustic_dim}], got {shape}")
        if mask is not None and (mask.shape != states.shape[:2] or mask.dtype != torch.bool):
            raise ConfigError(f"acoustic_mask must be a bool [B, F] = {list(states.shape[:2])} tensor, "
                              f"got {list(mask.shape)} {mask.dtype}")

    # ------------------------------------------------------------------------------------ releases
    def release_config(self) -> dict[str, Any]:
        """``{"unet": UNetConfig dict, "placements": [...], "acoustic_dim": D}``."""
        return {"unet": config_to_dict(UNetConfig.from_unet(self.unet)), "placements": list(self.placements),
                "acoustic_dim": self.acoustic_dim}

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` (class ``DualConditionUNet``) + ``model.safetensors`` (``unet.*`` + ``acoustic.*``)."""
        return save_release(directory, RELEASE_CLASS, self.release_config(), self.state_dict())

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str], *,
                        map_location: str | torch.device = "cpu") -> DualConditionUNet:
        """Build from a :meth:`save_pretrained` directory and load its weights strictly (eval mode).

        Raises:
            CheckpointError: missing files, another class, a bad config or weights that do not fit.
        """
        from sara.hub import local_path

        directory = local_path(directory)  # a hub id or URL -> its cached copy
        from sara.ldm.unet import build_unet

        payload, state = load_release(directory, RELEASE_CLASS)
        cfg = payload.get("config", {})
        try:
            unet_cfg = config_from_dict(UNetConfig, cfg["unet"])
            model = cls(build_unet(unet_cfg), cfg["placements"], int(cfg["acoustic_dim"]))
        except (KeyError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"{Path(directory) / 'config.json'}: bad DualConditionUNet config ({exc})") from None
        load_state_dict_strict(model, state, source=str(directory))
        return model.to(map_location).eval()


def count_added_parameters(cfg: UNetConfig, placements: Sequence[str], acoustic_dim: int = 128) -> tuple[int, int]:
    """``(UNet parameters, parameters added at placements)`` for ``cfg``, built on the meta device (instant).

    ``UNetConfig.tango()`` with 128-d acoustic states: 865,933,768 and, for ``("down1", "up1")``, 10,683,200.
    """
    from sara.ldm.unet import build_unet

    with torch.device("meta"):
        model = DualConditionUNet(build_unet(cfg), placements, acoustic_dim)
    base = sum(p.numel() for p in model.unet.parameters())
    return base, model.num_added_parameters()
