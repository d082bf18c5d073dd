"""PANNs CNN14 (Kong et al., arXiv 1912.10211) as used by audioldm_eval for FD, KL and IS.

Architecture and official checkpoint layout (``Cnn14_16k_mAP=0.438.pth`` / ``Cnn14_mAP=0.431.pth``, a pickled
dict whose ``"model"`` entry is the state dict):

* ``spectrogram_extractor.stft.conv_real.weight`` / ``conv_imag.weight`` ``[n_fft//2+1, 1, n_fft]``: the DFT
  basis times a periodic Hann window, applied as a strided conv after ``n_fft // 2`` reflect padding; the
  power spectrogram is ``real^2 + imag^2``.
* ``logmel_extractor.melW`` ``[n_fft//2+1, mel_bins]``: librosa (Slaney) mel filters; then
  ``10 log10(max(mel, 1e-10))`` (ref 1, no top_db).
* ``bn0`` BatchNorm over the mel axis, six ``conv_block{i}`` (two 3x3 conv + BN + ReLU, 2x2 average pool;
  1x1 for the last), mean over frequency, max + mean over time, ``fc1`` (2048 -> 2048) + ReLU = the "2048"
  embedding, ``fc_audioset`` (2048 -> 527) = logits (pre-sigmoid).

Shapes: waveform ``[B, T]`` -> log-mel ``[B, 1, N, mel_bins]`` -> embedding ``[B, 2048]``, logits ``[B, 527]``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sara.audio.dsp import mel_filterbank
from sara.errors import CheckpointError
from sara.eval.embedders.base import AudioEmbedder, EmbedderOutput, file_fingerprint, prepare_mono
from sara.serialization import load_state_dict_strict, load_torch_checkpoint

__all__ = ["Cnn14", "Cnn14Config", "Cnn14Embedder", "load_cnn14"]


@dataclass(frozen=True)
class Cnn14Config:
    """CNN14 hyper-parameters.  ``sr16k()`` / ``sr32k()`` are audioldm_eval's two configurations."""

    sample_rate: int = 16000
    window_size: int = 512
    hop_size: int = 160
    mel_bins: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    classes_num: int = 527
    channels: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)

    def __post_init__(self) -> None:
        if len(self.channels) != 6:
            raise ValueError("CNN14 has exactly six conv blocks")

    @classmethod
    def sr16k(cls) -> Cnn14Config:
        """``Cnn14_16k_mAP=0.438.pth``: window 512, hop 160, 64 mels, 50-8000 Hz."""
        return cls()

    @classmethod
    def sr32k(cls) -> Cnn14Config:
        """``Cnn14_mAP=0.431.pth`` as audioldm_eval runs it: window 1024, hop 320, 64 mels, 50-14000 Hz."""
        return cls(sample_rate=32000, window_size=1024, hop_size=320, fmax=14000.0)

    @classmethod
    def tiny(cls) -> Cnn14Config:
        """Narrow widths for tests (same key names; not loadable from official files)."""
        return cls(channels=(4, 4, 8, 8, 16, 16), classes_num=10)


class _Stft(nn.Module):
    """Holds the official ``conv_real`` / ``conv_imag`` DFT kernels ``[F, 1, n_fft]``."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        n_bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, n_bins, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, n_bins, n_fft, stride=hop, bias=False)
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        angle = 2 * math.pi * torch.outer(torch.arange(n_bins, dtype=torch.float64), torch.arange(n_fft, dtype=torch.float64)) / n_fft
        with torch.no_grad():  # e^{-i w n} * window: real = cos, imag = -sin
            self.conv_real.weight.copy_((torch.cos(angle) * window)[:, None].float())
            self.conv_imag.weight.copy_((-torch.sin(angle) * window)[:, None].float())
        for p in self.parameters():
            p.requires_grad_(False)


class _SpectrogramExtractor(nn.Module):
    """Power spectrogram ``[B, 1, N, F]`` from ``[B, T]`` (centred, reflect padding)."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.stft = _Stft(n_fft, hop)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x[:, None], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        power = self.stft.conv_real(x) ** 2 + self.stft.conv_imag(x) ** 2  # [B, F, N]
        return power.transpose(1, 2)[:, None]


class _LogmelExtractor(nn.Module):
    """``10 log10(max(power @ melW, 1e-10))`` ``[B, 1, N, mel_bins]``."""

    def __init__(self, cfg: Cnn14Config) -> None:
        super().__init__()
        fb = mel_filterbank(cfg.window_size // 2 + 1, cfg.mel_bins, cfg.sample_rate, cfg.fmin, cfg.fmax,
                            mel_scale="slaney", norm="slaney")
        self.melW = nn.Parameter(fb, requires_grad=False)

    def forward(self, power: Tensor) -> Tensor:
        return 10.0 * torch.log10(torch.clamp(torch.matmul(power, self.melW), min=1e-10))


class _ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then average pooling."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor, pool: int) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool)


class Cnn14(nn.Module):
    """CNN14 with the official parameter names (eval mode: no dropout, no SpecAugment)."""

    def __init__(self, config: Cnn14Config) -> None:
        super().__init__()
        self.config = config
        self.spectrogram_extractor = _SpectrogramExtractor(config.window_size, config.hop_size)
        self.logmel_extractor = _LogmelExtractor(config)
        self.bn0 = nn.BatchNorm2d(config.mel_bins)
        widths = (1, *config.channels)
        for i in range(6):
            self.add_module(f"conv_block{i + 1}", _ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(config.channels[-1], config.channels[-1])
        self.fc_audioset = nn.Linear(config.channels[-1], config.classes_num)

    def forward(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        """``wav [B, T]`` at ``config.sample_rate`` -> (embedding ``[B, 2048]``, logits ``[B, classes]``)."""
        x = self.logmel_extractor(self.spectrogram_extractor(wav))  # [B, 1, N, M]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, pool=2 if i < 5 else 1)
        x = x.mean(dim=3)  # over frequency -> [B, C, N']
        x = x.max(dim=2).values + x.mean(dim=2)
        embedding = F.relu(self.fc1(x))
        return embedding, self.fc_audioset(embedding)


def _infer_config(state: dict[str, Tensor], base: Cnn14Config | None) -> Cnn14Config:
    """Pick the official config matching the checkpoint's window size (512 -> 16 kHz, 1024 -> 32 kHz)."""
    if base is not None:
        return base
    key = "spectrogram_extractor.stft.conv_real.weight"
    if key not in state:
        raise CheckpointError(f"not a PANNs CNN14 checkpoint (no {key})")
    n_fft = state[key].shape[-1]
    presets = {512: Cnn14Config.sr16k(), 1024: Cnn14Config.sr32k()}
    if n_fft not in presets:
        raise CheckpointError(f"CNN14 checkpoint has window {n_fft}; pass an explicit Cnn14Config")
    cfg = presets[n_fft]
    channels = tuple(int(state[f"conv_block{i}.conv1.weight"].shape[0]) for i in range(1, 7))
    return dataclasses.replace(cfg, channels=channels, classes_num=int(state["fc_audioset.weight"].shape[0]),
                               mel_bins=int(state["logmel_extractor.melW"].shape[1]))


def load_cnn14(path: str | os.PathLike[str], config: Cnn14Config | None = None) -> Cnn14:
    """Load an official PANNs checkpoint (``{"model": state_dict, ...}`` or a bare state dict).

    Args:
        path: local ``.pth`` file (never downloaded).
        config: override; by default inferred from the file (window 512 -> 16 kHz, 1024 -> 32 kHz).

    Raises:
        CheckpointError: unreadable file or keys/shapes that do not fit CNN14.
    """
    obj = load_torch_checkpoint(path)
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict with a 'model' state dict")
    model = Cnn14(_infer_config(state, config))
    load_state_dict_strict(model, state, source=str(path))
    return model.eval()


class Cnn14Embedder(AudioEmbedder):
    """audioldm_eval's PANNs path: first channel, DC removal, resample, pad to >= 32000 samples, batch 1.

    ``clip`` = the "2048" embedding; ``frames`` = that vector as one frame ``[1, 2048]``; ``logits`` = 527
    pre-sigmoid AudioSet scores.
    """

    name = "cnn14"
    activation = "sigmoid"

    def __init__(self, model: Cnn14, weights_id: str = "random") -> None:
        self.model = model.eval()
        self.sample_rate = model.config.sample_rate
        self._weights_id = weights_id

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], config: Cnn14Config | None = None) -> Cnn14Embedder:
        """Embedder around :func:`load_cnn14`."""
        return cls(load_cnn14(path, config), file_fingerprint(path))

    @property
    def cache_id(self) -> str:
        return f"cnn14-{self.sample_rate}-{self._weights_id}"

    @torch.inference_mode()
    def run(self, wav: Tensor, sample_rate: int) -> EmbedderOutput:
        x = prepare_mono(wav, sample_rate, self.sample_rate, channel="first", remove_dc=True, min_samples=32000)
        emb, logits = self.model(x[None])
        return EmbedderOutput(frames=emb.float(), clip=emb[0].float(), logits=logits[0].float())
