"""Dasheng's front end: power mel -> dB (top_db) -> per-mel-bin BatchNorm.

Module names mirror the official state dict (``front_end.0.spectrogram.window``, ``front_end.0.mel_scale.fb``,
``init_bn.1.*``) so official checkpoints map one to one.  The window and filterbank are *non-persistent*
buffers: they are rebuilt from the config, never written to our release dirs, and the copies inside
official checkpoints are checked against the rebuilt ones and then dropped (see ``sara.encoder.loading``).

Shapes: ``B`` batch, ``T`` samples (16 kHz), ``F`` mel bins (64), ``N`` spectrogram frames (100 per second).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from sara.audio import dsp
from sara.encoder.config import EncoderConfig

__all__ = ["AmplitudeToDB", "MelSpectrogram", "build_front_end", "build_init_bn", "db_with_floor", "power_mel_frames"]

DbScope = Literal["batch", "item"]


class _Spectrogram(nn.Module):
    """Holds the periodic Hann ``window [n_fft]`` (official key ``...spectrogram.window``)."""

    def __init__(self, n_fft: int) -> None:
        super().__init__()
        self.register_buffer("window", dsp.hann_window(n_fft), persistent=False)


class _MelScale(nn.Module):
    """Holds the HTK mel filterbank ``fb [n_fft // 2 + 1, F]`` (official key ``...mel_scale.fb``)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        fb = dsp.mel_filterbank(cfg.n_fft // 2 + 1, cfg.n_mels, cfg.sample_rate, cfg.f_min, cfg.f_max, mel_scale="htk")
        self.register_buffer("fb", fb, persistent=False)


class MelSpectrogram(nn.Module):
    """Centred, reflect-padded power mel spectrogram (torchaudio ``MelSpectrogram`` semantics)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.n_fft, self.hop_length = cfg.n_fft, cfg.hop_length
        self.sample_rate, self.n_mels = cfg.sample_rate, cfg.n_mels
        self.spectrogram = _Spectrogram(cfg.n_fft)
        self.mel_scale = _MelScale(cfg)

    def forward(self, wav: Tensor) -> Tensor:
        """``wav [B, T]`` -> power mel ``[B, F, 1 + T // hop]``."""
        return dsp.mel_spectrogram(wav, self.sample_rate, self.n_fft, self.hop_length, self.n_mels, fb=self.mel_scale.fb,
                                   window=self.spectrogram.window, power=2.0, center=True)


class AmplitudeToDB(nn.Module):
    """Power -> dB (amin 1e-10, ref 1) with a ``top_db`` floor.

    With ``scope="batch"`` a ``[B, F, N]`` input gets ONE floor ``max - top_db`` over the whole batch,
    exactly as torchaudio (and therefore dasheng) does; ``scope="item"`` floors each item on its own, so
    an item's features do not depend on what it is batched with.
    """

    def __init__(self, top_db: float | None) -> None:
        super().__init__()
        self.top_db = top_db

    def forward(self, power: Tensor, scope: DbScope = "batch") -> Tensor:
        """``power [B, F, N]`` -> dB ``[B, F, N]``."""
        if scope == "item":
            return dsp.amplitude_to_db(power.unsqueeze(1), 10.0, 1e-10, 1.0, self.top_db).squeeze(1)
        return dsp.amplitude_to_db(power, 10.0, 1e-10, 1.0, self.top_db)


class _SwapFreqChannel(nn.Module):
    """``[B, 1, F, N] <-> [B, F, 1, N]`` so BatchNorm2d normalises per mel bin."""

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(1, 2)


def build_front_end(cfg: EncoderConfig) -> nn.Sequential:
    """``front_end`` = (0) power mel, (1) dB; indices match the official keys."""
    return nn.Sequential(MelSpectrogram(cfg), AmplitudeToDB(cfg.top_db))


def build_init_bn(cfg: EncoderConfig) -> nn.Sequential:
    """``init_bn`` = swap, (1) ``BatchNorm2d(F, momentum)``, swap; applied to ``[B, 1, F, N]``."""
    return nn.Sequential(_SwapFreqChannel(), nn.BatchNorm2d(cfg.n_mels, momentum=cfg.bn_momentum), _SwapFreqChannel())


def power_mel_frames(mel: MelSpectrogram, wav: Tensor, start: int, stop: int) -> Tensor:
    """Frames ``[start, stop)`` of ``mel(wav[None])[0]`` without padding (or copying) the whole signal.

    Args:
        mel: the front end's mel module (centred, reflect-padded STFT).
        wav: ``[T]`` samples (``T > n_fft // 2``, as reflect padding needs).
        start, stop: frame range, ``0 <= start < stop <= 1 + T // hop``.

    Returns:
        ``[F, stop - start]`` power mel.
    """
    n_fft, hop = mel.n_fft, mel.hop_length
    lo = start * hop - n_fft // 2  # sample range in the unpadded signal's coordinates
    seg = _reflect_slice(wav, lo, lo + (stop - start - 1) * hop + n_fft)
    spec = dsp.spectrogram(seg, n_fft, hop, mel.spectrogram.window, power=2.0, center=False)
    return torch.matmul(spec.transpose(-1, -2), mel.mel_scale.fb).transpose(-1, -2)


def _reflect_slice(wav: Tensor, lo: int, hi: int) -> Tensor:
    """Samples ``lo .. hi - 1`` of ``wav [T]`` reflect-padded at both ends (``F.pad(mode="reflect")``)."""
    length = wav.shape[-1]
    parts = [wav[1 : 1 - lo].flip(0)] if lo < 0 else []
    parts.append(wav[max(lo, 0) : min(hi, length)])
    if hi > length:
        parts.append(wav[2 * length - 1 - hi : length - 1].flip(0))
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def db_with_floor(power: Tensor, peak_power: float, top_db: float | None) -> Tensor:
    """Power -> dB like :class:`AmplitudeToDB` (amin 1e-10, ref 1) with the floor taken from ``peak_power``
    (the largest power of the whole clip, so that a clip converted block by block gets one floor)."""
    db = dsp.amplitude_to_db(power, 10.0, 1e-10, 1.0, None)
    if top_db is None:
        return db
    peak_db = 10.0 * torch.log10(torch.clamp(torch.tensor(peak_power, dtype=db.dtype), min=1e-10))
    return torch.maximum(db, peak_db - top_db)
