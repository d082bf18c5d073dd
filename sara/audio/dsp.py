"""Pure DSP functions written in torch (no torchaudio).

Every function here reproduces a torchaudio default bit-for-bit in float64 and to float32 round-off in
float32, because the official checkpoints were trained with torchaudio front ends:

* :func:`resample` -- ``torchaudio.functional.resample`` (Hann-windowed sinc, ``lowpass_filter_width=6``,
  ``rolloff=0.99``); the official SemanticVocoder resamples 24 kHz -> 16 kHz this way before dasheng.
  Rate pairs whose polyphase kernel would be huge (coprime rates such as 44101 -> 16000 Hz) evaluate the
  same filter phase by phase with only the non-zero taps, in bounded memory (O(signal)) and time.
* :func:`spectrogram` -- ``torchaudio.transforms.Spectrogram`` (centred, reflect padding, periodic Hann).
* :func:`mel_filterbank` -- ``torchaudio.functional.melscale_fbanks`` (HTK or Slaney scale, no norm/slaney).
* :func:`linear_filterbank` -- ``torchaudio.functional.linear_fbanks``.
* :func:`amplitude_to_db` -- ``torchaudio.functional.amplitude_to_DB`` including its batch-wide ``top_db``
  cut-off for 3-D inputs.

Shapes: waveforms are ``[..., T]`` (samples); spectrograms are ``[..., F, N]`` (frequency bins, frames).
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from sara.errors import AudioError

__all__ = [
    "amplitude_to_db",
    "hann_window",
    "hz_to_mel",
    "istft",
    "linear_filterbank",
    "mel_filterbank",
    "mel_spectrogram",
    "mel_to_hz",
    "num_stft_frames",
    "resample",
    "sinc_resample_kernel",
    "spectrogram",
    "stft",
]


# --------------------------------------------------------------------------------------------- STFT


def hann_window(n_fft: int, *, dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
    """Periodic Hann window of length ``n_fft`` (``torch.hann_window`` default, as torchaudio uses)."""
    return torch.hann_window(n_fft, periodic=True, dtype=dtype, device=device)


def num_stft_frames(num_samples: int, hop_length: int, center: bool = True, n_fft: int | None = None) -> int:
    """Number of STFT frames for ``num_samples``: ``1 + T // hop`` when centred, else ``1 + (T - n_fft) // hop``."""
    if center:
        return 1 + num_samples // hop_length
    if n_fft is None:
        raise ValueError("n_fft is required when center=False")
    return 1 + (num_samples - n_fft) // hop_length


def stft(
    x: Tensor,
    n_fft: int,
    hop_length: int,
    window: Tensor | None = None,
    *,
    center: bool = True,
    pad_mode: str = "reflect",
) -> Tensor:
    """Complex one-sided STFT.

    Args:
        x: waveform ``[..., T]``.
        n_fft: FFT size (= window length).
        hop_length: hop in samples.
        window: ``[n_fft]`` window; periodic Hann when None.
        center: pad ``n_fft // 2`` on both sides (``pad_mode``) so frame k is centred at ``k * hop``.

    Returns:
        Complex tensor ``[..., n_fft // 2 + 1, N]`` with ``N = 1 + T // hop`` when centred.
    """
    if window is None:
        window = hann_window(n_fft, dtype=x.dtype, device=x.device)
    lead = x.shape[:-1]
    spec = torch.stft(
        x.reshape(-1, x.shape[-1]),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=n_fft,
        window=window,
        center=center,
        pad_mode=pad_mode,
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(spec: Tensor, n_fft: int, hop_length: int, window: Tensor | None = None, *, center: bool = True) -> Tensor:
    """Inverse of :func:`stft` (overlap-add with window-square normalisation, no ``length`` argument).

    Args:
        spec: complex ``[..., n_fft // 2 + 1, N]``.

    Returns:
        Waveform ``[..., hop * (N - 1)]`` when centred.
    """
    if window is None:
        window = hann_window(n_fft, dtype=spec.real.dtype, device=spec.device)
    lead = spec.shape[:-2]
    wav = torch.istft(
        spec.reshape(-1, *spec.shape[-2:]),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=n_fft,
        window=window,
        center=center,
        normalized=False,
        onesided=True,
    )
    return wav.reshape(*lead, wav.shape[-1])


def spectrogram(
    x: Tensor,
    n_fft: int,
    hop_length: int,
    window: Tensor | None = None,
    *,
    power: float = 2.0,
    center: bool = True,
    pad_mode: str = "reflect",
) -> Tensor:
    """Magnitude (``power=1``) or power (``power=2``) spectrogram ``[..., n_fft // 2 + 1, N]``."""
    mag = stft(x, n_fft, hop_length, window, center=center, pad_mode=pad_mode).abs()
    return mag if power == 1.0 else mag.pow(power)


# ------------------------------------------------------------------------------------- filterbanks


def hz_to_mel(freq: Tensor | float, mel_scale: Literal["htk", "slaney"] = "htk") -> Tensor:
    """Hertz -> mel.  HTK: ``2595 * log10(1 + f / 700)``; Slaney: linear below 1 kHz, log above."""
    f = torch.as_tensor(freq, dtype=torch.float64)
    if mel_scale == "htk":
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(f >= min_log_hz, min_log_mel + torch.log(f.clamp(min=1e-10) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(mels: Tensor, mel_scale: Literal["htk", "slaney"] = "htk") -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(mels >= min_log_mel, min_log_hz * torch.exp(logstep * (mels - min_log_mel)), f_sp * mels)


def _triangular_filterbank(all_freqs: Tensor, f_pts: Tensor) -> Tensor:
    """Triangles with corners ``f_pts[i], f_pts[i+1], f_pts[i+2]`` sampled at ``all_freqs``: ``[n_freqs, n_filters]``."""
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0)


def mel_filterbank(
    n_freqs: int,
    n_mels: int,
    sample_rate: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    *,
    mel_scale: Literal["htk", "slaney"] = "htk",
    norm: Literal["slaney"] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Triangular mel filterbank ``[n_freqs, n_mels]`` (torchaudio ``melscale_fbanks`` semantics).

    Args:
        n_freqs: number of STFT bins, ``n_fft // 2 + 1``.
        n_mels: number of mel filters.
        sample_rate: Hz; bins are spaced evenly over ``[0, sample_rate // 2]``.
        f_min, f_max: filter range in Hz (``f_max`` defaults to Nyquist).
        norm: ``"slaney"`` divides each triangle by its width in Hz (area normalisation).
    """
    f_max = float(sample_rate // 2) if f_max is None else float(f_max)
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    m_pts = torch.linspace(float(hz_to_mel(f_min, mel_scale)), float(hz_to_mel(f_max, mel_scale)), n_mels + 2,
                           dtype=torch.float64)
    f_pts = mel_to_hz(m_pts, mel_scale)
    fb = _triangular_filterbank(all_freqs, f_pts)
    if norm == "slaney":
        fb = fb * (2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels])).unsqueeze(0)
    return fb.to(dtype)


def linear_filterbank(
    n_freqs: int, n_filters: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None,
    *, dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Linearly spaced triangular filterbank ``[n_freqs, n_filters]`` (torchaudio ``linear_fbanks``)."""
    f_max = float(sample_rate // 2) if f_max is None else float(f_max)
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    f_pts = torch.linspace(f_min, f_max, n_filters + 2, dtype=torch.float64)
    return _triangular_filterbank(all_freqs, f_pts).to(dtype)


def mel_spectrogram(
    x: Tensor,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    *,
    power: float = 2.0,
    mel_scale: Literal["htk", "slaney"] = "htk",
    norm: Literal["slaney"] | None = None,
    center: bool = True,
    fb: Tensor | None = None,
    window: Tensor | None = None,
) -> Tensor:
    """Mel spectrogram ``[..., n_mels, N]`` (torchaudio ``MelSpectrogram`` with ``win_length = n_fft``)."""
    spec = spectrogram(x, n_fft, hop_length, window, power=power, center=center)
    if fb is None:
        fb = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max, mel_scale=mel_scale, norm=norm,
                            dtype=spec.dtype).to(spec.device)
    return torch.matmul(spec.transpose(-1, -2), fb).transpose(-1, -2)


def amplitude_to_db(
    x: Tensor, multiplier: float = 10.0, amin: float = 1e-10, ref: float = 1.0, top_db: float | None = None
) -> Tensor:
    """Convert power (``multiplier=10``) or amplitude (``20``) to decibels.

    Reproduces ``torchaudio.functional.amplitude_to_DB``: ``db = multiplier * log10(max(x, amin)) -
    multiplier * log10(max(ref, amin))``, then, if ``top_db`` is set, ``db = max(db, peak - top_db)``.
    The peak is taken per item over the last three dims: for a 3-D input ``[B, F, N]`` that is the
    **whole batch** (a torchaudio quirk that dasheng inherits), for ``[B, C, F, N]`` it is per item.
    """
    db = multiplier * torch.log10(torch.clamp(x, min=amin))
    db = db - multiplier * math.log10(max(amin, ref))
    if top_db is None:
        return db
    shape = db.shape
    packed = shape[-3] if db.dim() > 2 else 1
    packed_db = db.reshape(-1, packed, shape[-2], shape[-1])
    peak = packed_db.amax(dim=(-3, -2, -1)).view(-1, 1, 1, 1)
    return torch.maximum(packed_db, peak - top_db).view(shape)


# -------------------------------------------------------------------------------------- resampling


def sinc_resample_kernel(
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> tuple[Tensor, int]:
    """Polyphase Hann-windowed sinc kernel ``[new, 1, 2 * width + orig]`` for reduced rates, and ``width``.

    ``orig_freq``/``new_freq`` must already be divided by their gcd.  Kernel ``j`` (output phase ``j``) holds
    ``h(t) = base/orig * sinc(base * t) * cos(pi * t * base / (2 * lpw))^2`` at offsets
    ``t = i/orig - j/new`` for input taps ``i`` in ``[-width, width + orig)``, with ``|base * t| <= lpw``,
    ``base = min(orig, new) * rolloff`` and ``width = ceil(lpw * orig / base)``.
    """
    base_freq = min(orig_freq, new_freq) * rolloff
    width = math.ceil(lowpass_filter_width * orig_freq / base_freq)
    idx = torch.arange(-width, width + orig_freq, dtype=torch.float64, device=device)[None, None] / orig_freq
    t = torch.arange(0, -new_freq, -1, dtype=torch.float64, device=device)[:, None, None] / new_freq + idx
    t = (t * base_freq).clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    scale = base_freq / orig_freq
    kernels = torch.where(t == 0, torch.tensor(1.0, dtype=torch.float64, device=device), torch.sin(t) / t)
    kernels = kernels * window * scale
    return kernels.to(dtype), width


# A polyphase kernel has ``new * (2 * width + orig)`` taps (rates reduced by their gcd): tiny for the usual
# rates (44.1 kHz -> 16 kHz is 160 x 453) but gigabytes for rates that share no factor with the target
# (44101 -> 16000 is 16000 x 44135).  Above this many taps the same filter is evaluated per output sample.
MAX_POLYPHASE_TAPS = 1 << 20


def resample(
    x: Tensor, orig_freq: int, new_freq: int, lowpass_filter_width: int = 6, rolloff: float = 0.99,
    *, method: Literal["auto", "polyphase", "direct"] = "auto",
) -> Tensor:
    """Band-limited sinc resampling of ``x [..., T]`` from ``orig_freq`` to ``new_freq`` Hz.

    Output length is ``ceil(new * T / orig)`` (with rates reduced by their gcd), exactly as torchaudio.
    Both methods evaluate the same windowed-sinc filter at the same offsets, so they agree to round-off:
    ``"polyphase"`` is torchaudio's strided convolution with one kernel per output phase; ``"direct"``
    computes the taps of each output sample from its exact fractional position, in chunks, so memory stays
    proportional to the signal and time to ``outputs x (2 * width + 1)`` for any pair of rates.  ``"auto"``
    uses the polyphase kernel when it has at most ``MAX_POLYPHASE_TAPS`` taps.

    Raises:
        AudioError: a rate is not a positive integer.
    """
    orig, new = _reduced_rates(orig_freq, new_freq)
    if orig == new:
        return x
    width = math.ceil(lowpass_filter_width * orig / (min(orig, new) * rolloff))
    if method == "auto":
        method = "polyphase" if new * (2 * width + orig) <= MAX_POLYPHASE_TAPS else "direct"
    lead, length = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, length)
    if method == "direct":
        out = _resample_direct(flat, orig, new, lowpass_filter_width, rolloff)
    else:
        out = _resample_polyphase(flat, orig, new, lowpass_filter_width, rolloff)
    return out.reshape(*lead, -1)


def _reduced_rates(orig_freq: int, new_freq: int) -> tuple[int, int]:
    """``(orig, new)`` divided by their gcd; :class:`~sara.errors.AudioError` unless both are positive integers."""
    # the resampler is public API (``sara.resample``), so a bad rate is a user error (SaraError)
    if not all(isinstance(r, numbers.Real) and not isinstance(r, bool) and math.isfinite(r) and r > 0
               and int(r) == r for r in (orig_freq, new_freq)):
        raise AudioError(f"sample rates must be positive integers (Hz), got {orig_freq!r} -> {new_freq!r}")
    gcd = math.gcd(int(orig_freq), int(new_freq))
    return int(orig_freq) // gcd, int(new_freq) // gcd


def _resample_polyphase(flat: Tensor, orig: int, new: int, lpw: int, rolloff: float) -> Tensor:
    """torchaudio's method on ``flat [n, T]`` (reduced rates): ``[n, ceil(new * T / orig)]``."""
    kernel, width = sinc_resample_kernel(orig, new, lpw, rolloff, dtype=flat.dtype, device=flat.device)
    length = flat.shape[-1]
    padded = F.pad(flat.unsqueeze(1), (width, width + orig))
    out = F.conv1d(padded, kernel, stride=orig)  # [n, new, frames]
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    return out[..., : math.ceil(new * length / orig)]


def _phase_taps(phases: Tensor, orig: int, new: int, width: int, lpw: int, rolloff: float) -> tuple[Tensor, Tensor]:
    """Input offsets ``[P, 2w+1]`` (int64) and float64 weights of the output phases ``phases [P]``.

    Output ``k = f * new + j`` sits at input position ``f * orig + m0_j + frac_j`` with
    ``m0_j + frac_j = j * orig / new``; tap ``d`` reads input ``f * orig + m0_j + d`` with weight
    ``h(base * (d - frac_j) / orig)``, the kernel of :func:`sinc_resample_kernel`.
    """
    base = min(orig, new) * rolloff
    num = phases * orig
    m0, frac = num // new, (num % new).double() / new
    d = torch.arange(-width, width + 1, dtype=torch.int64, device=phases.device)
    t = ((d.double()[None, :] - frac[:, None]) * (base / orig)).clamp(-lpw, lpw)
    window = torch.cos(t * math.pi / lpw / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones((), dtype=torch.float64, device=phases.device), torch.sin(t) / t)
    return m0[:, None] + d[None, :], sinc * window * (base / orig)


def _resample_direct(flat: Tensor, orig: int, new: int, lpw: int, rolloff: float) -> Tensor:
    """Polyphase filtering of ``flat [n, T]`` (reduced rates) with only each phase's non-zero taps.

    The ``new`` phases are processed in blocks of ``P`` and the ``frames = ceil(outputs / new)`` input frames
    in blocks of ``Fb``, so the working set (``Fb x P x (2w + 1)`` taps) stays small and fixed whatever the
    rates: memory is O(signal) and the weights are computed once per phase.
    """
    n, length = flat.shape
    width = math.ceil(lpw * orig / (min(orig, new) * rolloff))
    taps, total = 2 * width + 1, math.ceil(new * length / orig)
    frames = math.ceil(total / new)
    padded = F.pad(flat, (width, width + orig + 1))  # every tap index is then in range
    out = flat.new_zeros(n, frames, new)
    budget = min(max(n * length // 16, 1 << 12), 1 << 16) // n  # taps per block, per channel
    block_p = max(1, min(new, budget // taps))
    block_f = max(1, min(frames, budget // (block_p * taps)))
    for j0 in range(0, new, block_p):
        phases = torch.arange(j0, min(new, j0 + block_p), dtype=torch.int64, device=flat.device)
        offsets, weight = _phase_taps(phases, orig, new, width, lpw, rolloff)
        offsets, weight = offsets + width, weight.to(flat.dtype)
        for f0 in range(0, frames, block_f):
            f = torch.arange(f0, min(frames, f0 + block_f), dtype=torch.int64, device=flat.device) * orig
            gathered = padded[:, f[:, None, None] + offsets[None]]  # [n, Fb, P, taps]
            out[:, f0 : f0 + len(f), j0 : j0 + len(phases)] = torch.einsum("nfpt,pt->nfp", gathered, weight)
    return out.reshape(n, -1)[:, :total]
