"""The 16 kHz log-mel front end of Tango / AudioLDM, reproduced exactly.

Reference (read, not copied): haoheliu/AudioLDM ``audioldm/audio/stft.py`` (``TacotronSTFT``: a conv1d
Fourier-basis STFT windowed by a periodic Hann window, reflect padding of ``n_fft / 2``, magnitude, librosa's
slaney mel basis) and ``audio_processing.py`` (``log(clamp(x, 1e-5))``); declare-lab/tango
``tools/torch_tools.py`` (``wav_to_fbank``: waveform normalisation, padding to ``target_length * 160`` samples,
``_pad_spec``).  The conv-basis STFT equals ``torch.stft`` with a periodic Hann window and centre/reflect padding,
which is what :func:`log_mel` uses (the equality is tested against an independent conv1d STFT).

Shapes: waveforms ``[B, N]`` (samples at ``cfg.sample_rate``); log-mels ``[B, T, n_mels]`` (frames first, as
Tango feeds the VAE and HiFi-GAN), ``T = N // hop + 1`` before padding/trimming.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sara.audio import dsp
from sara.errors import AudioError

__all__ = [
    "TANGO_FRAMES",
    "MelConfig",
    "MelFrontend",
    "log_mel",
    "pad_frames",
    "prepare_waveform",
    "slaney_mel_filterbank",
    "tango_log_mel",
]

TANGO_FRAMES = 1024  # Tango's target_length = int(10 * 102.4): 10.24 s at hop 160 / 16 kHz
_PEAK = 0.5  # Tango scales every waveform to a peak of 0.5 (normalize_wav / read_wav_file)
_MEAN_EPS = 1e-8  # the epsilon of Tango's first normalisation, max|x| + 1e-8


@dataclass(frozen=True)
class MelConfig:
    """Log-mel parameters (defaults = Tango's ``stft_config.json`` / AudioLDM's ``default_audioldm_config``).

    Attributes:
        sample_rate: Hz of the waveform the STFT sees.
        n_fft: FFT size (Tango's ``filter_length``), samples.
        win_length: Hann window length, samples (centre-padded to ``n_fft`` when shorter).
        hop_length: frame hop, samples (160 = 10 ms at 16 kHz).
        n_mels: mel bins; must be even (Tango's ``_pad_spec`` drops an odd last bin, sara refuses it instead).
        f_min: lowest mel edge, Hz.
        f_max: highest mel edge, Hz (<= Nyquist).
        log_floor: magnitudes are clamped to this before the natural log.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 8000.0
    log_floor: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if self.n_mels % 2:
            raise ValueError(f"n_mels must be even (Tango's _pad_spec drops an odd last bin), got {self.n_mels}")
        if not 0.0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got {self.f_min}, {self.f_max}")
        if self.log_floor <= 0:
            raise ValueError(f"log_floor must be positive, got {self.log_floor}")

    @classmethod
    def paper(cls) -> MelConfig:
        """Tango / AudioLDM: 16 kHz, n_fft = win = 1024, hop 160, 64 slaney bins over 0-8000 Hz."""
        return cls()

    @classmethod
    def small(cls) -> MelConfig:
        """Same as :meth:`paper` (the front end is cheap; small models keep the official mel)."""
        return cls()

    @classmethod
    def tiny(cls) -> MelConfig:
        """Test size: 16 mel bins, the paper's STFT."""
        return dataclasses.replace(cls(), n_mels=16)

    def num_frames(self, num_samples: int) -> int:
        """Frames :func:`log_mel` returns for ``num_samples`` samples (centred STFT): ``N // hop + 1``."""
        return num_samples // self.hop_length + 1


# ------------------------------------------------------------------------------------------ filterbank


def slaney_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> Tensor:
    """librosa's default mel basis (``htk=False``, ``norm="slaney"``), computed in float64.

    Corner frequencies are ``n_mels + 2`` points evenly spaced on the Slaney mel scale (linear ``f / (200/3)``
    below 1 kHz, logarithmic with step ``log(6.4) / 27`` above); filter ``i`` is the triangle over corners
    ``i, i+1, i+2`` sampled at the FFT bin centres ``linspace(0, sr/2, n_fft//2 + 1)`` and scaled by
    ``2 / (f_{i+2} - f_i)`` (unit area in Hz).

    Args:
        sample_rate: Hz.
        n_fft: FFT size (gives ``n_fft // 2 + 1`` frequency bins).
        n_mels: number of filters.
        f_min, f_max: band edges in Hz (``f_max`` None -> Nyquist).

    Returns:
        ``[n_mels, n_fft // 2 + 1]`` float32 (librosa's dtype), applied as ``basis @ magnitude``.
    """
    f_max = sample_rate / 2 if f_max is None else float(f_max)
    bin_freqs = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_edges = torch.linspace(
        float(dsp.hz_to_mel(f_min, "slaney")), float(dsp.hz_to_mel(f_max, "slaney")), n_mels + 2, dtype=torch.float64
    )
    corners = dsp.mel_to_hz(mel_edges, "slaney")  # [n_mels + 2] Hz
    widths = corners.diff()  # [n_mels + 1]
    offsets = corners[:, None] - bin_freqs[None, :]  # [n_mels + 2, n_bins]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    triangles = torch.clamp(torch.minimum(rising, falling), min=0.0)
    area_norm = 2.0 / (corners[2:] - corners[:-2])
    return (triangles * area_norm[:, None]).to(torch.float32)


def _padded_window(cfg: MelConfig, dtype: torch.dtype, device: torch.device | None = None) -> Tensor:
    """Periodic Hann of ``win_length`` zero-padded at both ends to ``n_fft`` (librosa ``pad_center``)."""
    window = torch.hann_window(cfg.win_length, periodic=True, dtype=dtype, device=device)
    left = (cfg.n_fft - cfg.win_length) // 2
    return F.pad(window, (left, cfg.n_fft - cfg.win_length - left))


# ------------------------------------------------------------------------------------------ waveform


def _check_waveform(waveform: Tensor, what: str) -> Tensor:
    """Validate a ``[N]`` / ``[B, N]`` waveform and return it as float ``[B, N]``; raises AudioError."""
    if not isinstance(waveform, Tensor):
        raise AudioError(f"{what}: expected a torch.Tensor waveform, got {type(waveform).__name__}")
    if waveform.dim() not in (1, 2):
        raise AudioError(f"{what}: expected a waveform [N] or [B, N], got shape {tuple(waveform.shape)}")
    wav = waveform if waveform.dim() == 2 else waveform.unsqueeze(0)
    if wav.numel() == 0:
        raise AudioError(f"{what}: empty waveform (shape {tuple(waveform.shape)})")
    if not wav.is_floating_point():
        wav = wav.float()
    if not torch.isfinite(wav).all():
        raise AudioError(f"{what}: waveform contains NaN or Inf samples")
    return wav


def _peak_normalise(wav: Tensor, eps: float) -> Tensor:
    """``x / (max|x| + eps) * 0.5`` per row of ``[B, N]``; an all-zero row stays zero.

    With ``eps = 0`` Tango divides ``0 / 0`` for silence and its later ``nan_to_num`` turns the NaNs into 0;
    the ``where`` gives the same zeros without creating NaNs.
    """
    peak = wav.abs().amax(dim=-1, keepdim=True)
    scaled = wav / (peak + eps).clamp_min(torch.finfo(wav.dtype).tiny)
    return torch.where(peak > 0, scaled, torch.zeros_like(wav)) * _PEAK


def _pad_or_trim(wav: Tensor, length: int) -> Tensor:
    """Zero-pad at the end or cut ``[B, N]`` to ``[B, length]`` (Tango's ``pad_wav``)."""
    n = wav.shape[-1]
    return wav[..., :length] if n >= length else F.pad(wav, (0, length - n))


def prepare_waveform(
    waveform: Tensor, sample_rate: int, num_frames: int | None, cfg: MelConfig | None = None
) -> Tensor:
    """Tango's waveform preparation (``read_wav_file`` of ``tools/torch_tools.py``), batched per row.

    Resample to ``cfg.sample_rate`` (:func:`sara.audio.dsp.resample`, torchaudio's sinc resampler as Tango uses);
    subtract the mean; divide by ``max|x| + 1e-8``; x0.5; zero-pad or cut to ``num_frames * hop`` samples; divide
    by ``max|x|`` and x0.5 again (silence stays silent); clip to ``[-1, 1]`` (``get_mel_from_wav``).  Rows are
    prepared independently, as Tango prepares each file.  Tango takes channel 0 of a multichannel file: pass
    one channel per row.

    Args:
        waveform: ``[B, N]`` or ``[N]`` samples at ``sample_rate``.
        sample_rate: input rate, Hz.
        num_frames: target frame count (Tango: 1024); None keeps the length, zero-padded up to a whole number
            of hops.
        cfg: front-end config (``MelConfig()`` when None).

    Returns:
        ``[B, num_frames * hop]`` float waveform at ``cfg.sample_rate`` with peak 0.5.

    Raises:
        AudioError: not a 1-D/2-D tensor, empty, non-finite, bad sample rate or frame count.
    """
    cfg = cfg or MelConfig()
    wav = _check_waveform(waveform, "prepare_waveform")
    if sample_rate <= 0:
        raise AudioError(f"prepare_waveform: sample_rate must be positive, got {sample_rate}")
    if num_frames is not None and num_frames <= 0:
        raise AudioError(f"prepare_waveform: num_frames must be positive, got {num_frames}")
    wav = dsp.resample(wav, int(sample_rate), cfg.sample_rate)
    wav = _peak_normalise(wav - wav.mean(dim=-1, keepdim=True), _MEAN_EPS)
    frames = math.ceil(wav.shape[-1] / cfg.hop_length) if num_frames is None else num_frames
    wav = _peak_normalise(_pad_or_trim(wav, frames * cfg.hop_length), 0.0)
    return wav.clamp(-1.0, 1.0)


# ------------------------------------------------------------------------------------------ log-mel


def _log_mel(wav: Tensor, cfg: MelConfig, window: Tensor, mel_basis: Tensor) -> Tensor:
    """``log(clamp(mel_basis @ |STFT(wav)|, floor))`` for validated ``wav [B, N]`` -> ``[B, N // hop + 1, M]``."""
    if wav.shape[-1] <= cfg.n_fft // 2:
        raise AudioError(
            f"log_mel: waveform of {wav.shape[-1]} samples is too short for reflect padding of {cfg.n_fft // 2}"
        )
    spec = torch.stft(
        wav, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.n_fft, window=window,
        center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
    )
    mel = torch.matmul(mel_basis, spec.abs())  # [B, M, T]
    return torch.log(torch.clamp(mel, min=cfg.log_floor)).transpose(1, 2)


def log_mel(waveform16k: Tensor, cfg: MelConfig | None = None) -> Tensor:
    """Tango's log-mel of an already prepared waveform (``TacotronSTFT.mel_spectrogram``).

    Args:
        waveform16k: ``[B, N]`` (or ``[N]``) samples at ``cfg.sample_rate``; N > n_fft / 2.
        cfg: front-end config (``MelConfig()`` when None).

    Returns:
        ``[B, N // hop + 1, n_mels]`` natural-log magnitudes (frames first).

    Raises:
        AudioError: empty, non-finite or too short input.
    """
    cfg = cfg or MelConfig()
    wav = _check_waveform(waveform16k, "log_mel")
    window = _padded_window(cfg, wav.dtype, wav.device)
    basis = slaney_mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max)
    return _log_mel(wav, cfg, window, basis.to(device=wav.device, dtype=wav.dtype))


def pad_frames(mel: Tensor, frames: int) -> Tensor:
    """Tango's ``_pad_spec``: zero-pad (log-mel value 0, as Tango) or cut ``[B, T, M]`` to ``[B, frames, M]``."""
    n = mel.shape[1]
    return mel[:, :frames] if n >= frames else F.pad(mel, (0, 0, 0, frames - n))


def tango_log_mel(
    waveform: Tensor, sample_rate: int, frames: int | None = None, cfg: MelConfig | None = None
) -> Tensor:
    """Tango's ``wav_to_fbank``: :func:`prepare_waveform`, :func:`log_mel`, then :func:`pad_frames`.

    Args:
        waveform: ``[B, N]`` or ``[N]`` at ``sample_rate`` Hz.
        sample_rate: input rate, Hz (resampled to ``cfg.sample_rate``).
        frames: output frames (None -> 1024 = 10.24 s, Tango's target_length).
        cfg: front-end config.

    Returns:
        ``[B, frames, n_mels]`` log-mel.
    """
    cfg = cfg or MelConfig()
    frames = TANGO_FRAMES if frames is None else frames
    wav = prepare_waveform(waveform, sample_rate, frames, cfg)
    return pad_frames(log_mel(wav, cfg), frames)


class MelFrontend(nn.Module):
    """:func:`log_mel` as a module; the window and mel basis are non-persistent buffers rebuilt from ``cfg``.

    Args:
        cfg: front-end config (``MelConfig()`` when None).
    """

    def __init__(self, cfg: MelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or MelConfig()
        c = self.cfg
        self.register_buffer("window", _padded_window(c, torch.float32), persistent=False)
        basis = slaney_mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.f_min, c.f_max)
        self.register_buffer("mel_basis", basis, persistent=False)

    @property
    def sample_rate(self) -> int:
        """Rate of the waveform :meth:`forward` expects, Hz."""
        return self.cfg.sample_rate

    @property
    def hop_length(self) -> int:
        """Samples per frame."""
        return self.cfg.hop_length

    def forward(self, wav16k: Tensor) -> Tensor:
        """``[B, N]`` prepared waveform at ``sample_rate`` -> ``[B, N // hop + 1, n_mels]`` log-mel."""
        wav = _check_waveform(wav16k, "MelFrontend").to(self.window.dtype)
        return _log_mel(wav, self.cfg, self.window, self.mel_basis)

    def tango(self, waveform: Tensor, sample_rate: int, frames: int | None = None) -> Tensor:
        """:func:`tango_log_mel` with this module's buffers: any-rate ``[B, N]`` -> ``[B, frames, n_mels]``."""
        frames = TANGO_FRAMES if frames is None else frames
        return pad_frames(self(prepare_waveform(waveform, sample_rate, frames, self.cfg)), frames)
