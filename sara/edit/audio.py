"""Waveform side of editing: chunked vocoder decoding with cross-fades, splicing, input preparation.

The vocoder is fully convolutional, so decode memory is linear in the number of frames it sees at once;
decoding in chunks of ``chunk`` frames (sharing ``overlap`` frames, joined by a linear cross-fade, each
chunk using its slice of one global noise tensor) bounds it by the chunk length whatever the duration.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sara.audio.io import check_waveform, prepare_waveform
from sara.errors import AudioError
from sara.vocoder.chunking import crossfade_into, plan_chunks

__all__ = ["as_batch", "decode_chunked", "fade_weights", "splice"]


def decode_chunked(vocoder: Any, latents: Tensor, noise: Tensor, steps: int, *, chunk: int = 250,
                   overlap: int = 25, sampler: dict[str, str] | None = None) -> Tensor:
    """Decode ``latents [1, C, F]`` with the vocoder, ``chunk`` frames at a time.

    Args:
        vocoder: has ``decode(latents, steps=, noise=)`` and ``hop_length``.
        latents: ``[B, C, F]`` at 25 Hz.
        noise: ``[B, F * hop]`` standard-normal vocoder noise (global; each chunk takes its slice).
        steps: vocoder Euler steps.
        chunk, overlap: chunk and cross-fade lengths in frames (defaults 10 s and 1 s).
        sampler: extra ``vocoder.decode`` keywords (``solver`` / ``grid``; none for the official sampler).

    Returns:
        ``[B, F * hop]`` float32 waveform; one vocoder call (identical to ``vocoder.decode``) when
        ``F <= chunk``.
    """
    hop, frames = int(vocoder.hop_length), latents.shape[-1]
    spans = plan_chunks(frames, chunk, overlap)
    if len(spans) == 1:
        return vocoder.decode(latents, steps=steps, noise=noise, **(sampler or {})).float()
    out = torch.empty(latents.shape[0], frames * hop)
    for i, (a, b) in enumerate(spans):
        piece = vocoder.decode(latents[..., a:b], steps=steps, noise=noise[..., a * hop : b * hop],
                               **(sampler or {})).float()
        crossfade_into(out, piece.cpu(), a * hop, overlap * hop if i else 0)
    return out


def fade_weights(length: int, fade_in: int, fade_out: int) -> Tensor:
    """``[length]`` weights: linear 0 -> 1 over the first ``fade_in`` samples, 1, then 1 -> 0 over the
    last ``fade_out`` (each fade strictly inside (0, 1))."""
    w = torch.ones(length)
    if fade_in > 0:
        w[:fade_in] = torch.linspace(0.0, 1.0, fade_in + 2)[1:-1]
    if fade_out > 0:
        w[length - fade_out :] = torch.minimum(w[length - fade_out :], torch.linspace(1.0, 0.0, fade_out + 2)[1:-1])
    return w


def splice(kept: Tensor, piece: Tensor, piece_start: int, start: int, end: int, fade_in: int,
           fade_out: int) -> Tensor:
    """``kept [B, S]`` with samples ``[start, end)`` replaced by ``piece [B, P]`` (whose sample 0 sits at
    ``piece_start``), cross-faded over ``fade_in`` / ``fade_out`` samples *inside* ``[start, end)``.

    Samples outside ``[start, end)`` are ``kept``'s, bit for bit.
    """
    out = kept.clone()
    w = fade_weights(end - start, fade_in, fade_out).to(out)
    new = piece[..., start - piece_start : end - piece_start].to(out)
    out[..., start:end] = (1 - w) * out[..., start:end] + w * new
    return out


def as_batch(waveform: Tensor, sample_rate: int) -> Tensor:
    """A user's ``[T]``, ``[C, T]`` or ``[1, C, T]`` clip as ``[1, C, T]`` float32 (AudioError if unusable)."""
    if not isinstance(waveform, Tensor):
        raise AudioError(f"expected a waveform tensor, got {type(waveform).__name__}")
    wav = waveform.float()
    wav = wav.reshape(1, 1, -1) if wav.dim() == 1 else wav.unsqueeze(0) if wav.dim() == 2 else wav
    if wav.dim() != 3 or wav.shape[0] != 1:
        raise AudioError(f"expected one clip [T] or [C, T], got shape {tuple(waveform.shape)}")
    check_waveform(wav, sample_rate, name="input audio")
    return wav


def original_at(wav: Tensor, sample_rate: int, target_rate: int, length: int) -> Tensor:
    """The input ``[1, C, T]`` as mono ``[1, length]`` at ``target_rate`` (zero-padded or cut)."""
    mono = prepare_waveform(wav[0], sample_rate, target_rate, mono=True)
    out = torch.zeros(1, length)
    n = min(length, mono.shape[-1])
    out[:, :n] = mono[..., :n]
    return out
