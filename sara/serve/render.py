"""The spectrogram image of a result: a log-magnitude STFT drawn with matplotlib's Agg canvas (no pyplot,
no global backend switch)."""

from __future__ import annotations

import io

import torch
from torch import Tensor

__all__ = ["spectrogram_png"]

N_FFT = 1024  # samples: ~43 ms at 24 kHz, 64 ms at 16 kHz
FLOOR_DB = 80.0  # dynamic range shown below the loudest bin


def spectrogram_png(wav: Tensor, sample_rate: int, *, width_px: int = 640, height_px: int = 200) -> bytes:
    """A PNG of the spectrogram of ``wav [N]`` (time in s, frequency in kHz).

    Args:
        wav: mono float waveform ``[N]`` at ``sample_rate`` Hz.
        sample_rate: Hz.
        width_px, height_px: image size in pixels.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    db = _log_magnitude(wav)
    fig = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.08, 0.22, 0.9, 0.72))
    seconds = wav.shape[-1] / sample_rate
    ax.imshow(db.numpy(), origin="lower", aspect="auto", cmap="magma",
              extent=(0.0, seconds, 0.0, sample_rate / 2000), vmin=float(db.max()) - FLOOR_DB, vmax=float(db.max()))
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("kHz", fontsize=8)
    ax.tick_params(labelsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _log_magnitude(wav: Tensor) -> Tensor:
    """``[F, frames]`` magnitude in dB (hop ``N_FFT / 4``); short inputs are zero-padded to one window."""
    x = wav.float().reshape(-1)
    if x.numel() < N_FFT:
        x = torch.nn.functional.pad(x, (0, N_FFT - x.numel()))
    spec = torch.stft(x, N_FFT, hop_length=N_FFT // 4, window=torch.hann_window(N_FFT), return_complex=True)
    return 20 * torch.log10(spec.abs().clamp_min(1e-5))
