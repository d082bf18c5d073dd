"""Frame masks over latent sequences ``[T]`` (1 = held to known latents, 0 = generated) with soft edges."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ramp_into", "ramp_out", "region_mask"]


def region_mask(num_frames: int, start: int, end: int) -> Tensor:
    """``[num_frames]`` float mask: 0 on ``[start, end)`` (regenerated), 1 elsewhere (held)."""
    mask = torch.ones(num_frames)
    mask[max(0, start):max(0, end)] = 0.0
    return mask


def _shift(x: Tensor, s: int) -> Tensor:
    """``x [T]`` shifted by ``s`` frames (positive: towards later frames), zero-filled."""
    out = torch.zeros_like(x)
    if s > 0:
        out[s:] = x[:-s]
    else:
        out[:s] = x[-s:]
    return out


def ramp_into(mask: Tensor, frames: int) -> Tensor:
    """Soften ``mask [T]`` (in {0, 1}) by extending each held run into the generated frames next to it:
    a generated frame at distance ``d <= frames`` from a held one gets ``1 - d / (frames + 1)``.

    Used for inpainting, where the generated region's original latents exist: its edges fade from the
    original into the new content, and every held frame stays exactly 1.
    """
    held = (mask >= 1).float()
    out = mask.clone().float()
    for d in range(1, frames + 1):
        near = torch.maximum(_shift(held, d), _shift(held, -d))
        out = torch.maximum(out, near * (1 - d / (frames + 1)))
    return out


def ramp_out(mask: Tensor, protect: Tensor, frames: int) -> Tensor:
    """Soften ``mask [T]`` (in {0, 1}) on the held side: a held frame that is not ``protect``-ed and lies
    at distance ``d <= frames`` from a generated frame gets ``d / (frames + 1)``.

    Used for long-form windows: the last frames of the previous window (held context) are partly
    re-generated, so the two windows blend instead of meeting at a hard edge; frames that belong to the
    user's input (``protect``, bool ``[T]``) are never touched.
    """
    out = mask.clone().float()
    free = (mask < 1).float()
    movable = (mask >= 1) & ~protect
    for d in range(frames, 0, -1):
        near = torch.maximum(_shift(free, d), _shift(free, -d)) > 0
        out = torch.where(movable & near, torch.full_like(out, d / (frames + 1)), out)
    return out
