"""Sequential, overlapping chunks for decoding very long latent sequences in bounded memory.

Decoding memory is linear in length (about 7.5 MB per second of audio for the paper model, measured on
CPU, plus 5 MB/s for the cached condition projections), so only inputs beyond ``chunk_frames`` are split.
Each chunk is sampled with its slice of the *global* initial noise and neighbouring chunks are joined
with a linear cross-fade over ``overlap_frames``.  Because every Euler step widens the receptive field,
chunked output is not bit-identical to a single pass near the joins; away from them it is.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["crossfade_into", "plan_chunks"]


def plan_chunks(num_frames: int, chunk_frames: int, overlap_frames: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` latent-frame spans covering ``[0, num_frames)``; consecutive spans share
    ``overlap_frames`` frames.  One span when the input fits in a chunk; otherwise the fewest spans of at
    most ``chunk_frames`` frames, of (nearly) equal length, so no short tail chunk is wasted.

    Raises:
        ValueError: ``chunk_frames <= overlap_frames`` or a negative overlap.
    """
    if overlap_frames < 0 or chunk_frames <= overlap_frames:
        raise ValueError(f"need chunk_frames > overlap_frames >= 0, got {chunk_frames}, {overlap_frames}")
    if num_frames <= chunk_frames:
        return [(0, num_frames)]
    count = math.ceil((num_frames - overlap_frames) / (chunk_frames - overlap_frames))
    stride = (num_frames - overlap_frames) / count  # new frames per chunk (fractional; starts are rounded)
    starts = [round(i * stride) for i in range(count)]
    ends = starts[1:] + [num_frames - overlap_frames]
    return [(a, b + overlap_frames) for a, b in zip(starts, ends)]


def crossfade_into(out: Tensor, piece: Tensor, start: int, fade: int) -> None:
    """Write ``piece [B, l]`` into ``out [B, L]`` at sample ``start``, blending its first ``fade`` samples
    linearly with what ``out`` already holds there (in place)."""
    end = start + piece.shape[-1]
    fade = min(fade, piece.shape[-1])
    if fade > 0:
        w = torch.linspace(0.0, 1.0, fade + 2, device=out.device, dtype=out.dtype)[1:-1]
        out[..., start : start + fade] = out[..., start : start + fade] * (1.0 - w) + piece[..., :fade] * w
    out[..., start + fade : end] = piece[..., fade:]
