"""VGGish (Hershey et al. 2017) as torchvggish runs it for FAD: PCA off, final ReLU removed.

Front end (torchvggish ``vggish_params`` / ``mel_features``; ``EVALUATION.md`` 1.1.4), 16 kHz mono:

* frames of 400 samples (25 ms), hop 160 (10 ms), **no padding**; periodic Hann; ``|rfft|`` with n_fft 512;
* 64 HTK-mel bands, 125-7500 Hz, triangles linear **in mel** (DC bin weight zeroed), ``log(mel + 0.01)``;
* non-overlapping examples of 96 frames (0.96 s); a trailing partial example is dropped.

Network and official checkpoint layout (``vggish-10086976.pth``, a bare state dict)::

    features.{0,3,6,8,11,13}.{weight,bias}   conv 3x3: 1->64, 64->128, 128->256, 256->256, 256->512, 512->512
    embeddings.{0,2,4}.{weight,bias}         Linear 12288->4096, 4096->4096, 4096->128

Input examples ``[B, 1, 96, 64]`` (frames, bands); after four max-pools ``[B, 512, 6, 4]`` is flattened in
(frames, bands, channels) order -- the TF layout -- before ``embeddings``.  Output ``[B, 128]``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sara.errors import CheckpointError
from sara.eval.embedders.base import AudioEmbedder, EmbedderOutput, file_fingerprint, prepare_mono
from sara.serialization import load_state_dict_strict, load_torch_checkpoint

__all__ = ["VGGish", "VGGishConfig", "VGGishEmbedder", "load_vggish", "vggish_examples", "vggish_log_mel"]

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512  # next power of two above the window
N_BANDS = 64
F_MIN, F_MAX = 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s window and hop


@dataclass(frozen=True)
class VGGishConfig:
    """Widths of VGGish; the default is the official network, ``tiny()`` is for tests."""

    channels: tuple[int, int, int, int] = (64, 128, 256, 512)
    hidden_dim: int = 4096
    embedding_dim: int = 128
    final_relu: bool = False  # torchvggish's use_activation; FAD tools remove it

    @classmethod
    def tiny(cls) -> VGGishConfig:
        return cls(channels=(4, 8, 8, 16), hidden_dim=32, embedding_dim=8)


def _hz_to_mel_htk(f: Tensor) -> Tensor:
    return 1127.0 * torch.log1p(f / 700.0)


def vggish_mel_matrix() -> Tensor:
    """``[257, 64]`` mel weights: triangles linear in HTK-mel between edges spaced evenly in mel, DC row zero."""
    bin_mel = _hz_to_mel_htk(torch.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1, dtype=torch.float64))
    edges = torch.linspace(float(_hz_to_mel_htk(torch.tensor(F_MIN))), float(_hz_to_mel_htk(torch.tensor(F_MAX))),
                           N_BANDS + 2, dtype=torch.float64)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (center - lower)
    falling = (upper - bin_mel[:, None]) / (upper - center)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights[0] = 0.0  # the DC bin never contributes
    return weights


def vggish_log_mel(x: Tensor) -> Tensor:
    """Log-mel ``[N_frames, 64]`` of a 16 kHz mono signal ``[T]`` (``N = 1 + (T - 400) // 160``; 0 if shorter)."""
    if x.shape[-1] < WINDOW:
        return x.new_zeros(0, N_BANDS)
    frames = x.double().unfold(-1, WINDOW, HOP)  # [N, 400]
    window = 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(WINDOW, dtype=torch.float64) / WINDOW)  # periodic
    mag = torch.fft.rfft(frames * window, n=N_FFT).abs()  # [N, 257]
    return torch.log(mag @ vggish_mel_matrix() + LOG_OFFSET).float()


def vggish_examples(x: Tensor) -> Tensor:
    """Non-overlapping 0.96 s examples ``[B, 1, 96, 64]`` of a 16 kHz mono signal ``[T]``."""
    mel = vggish_log_mel(x)
    n = mel.shape[0] // EXAMPLE_FRAMES
    return mel[: n * EXAMPLE_FRAMES].reshape(n, 1, EXAMPLE_FRAMES, N_BANDS)


class VGGish(nn.Module):
    """VGGish with torchvggish's parameter names (``features.*``, ``embeddings.*``)."""

    def __init__(self, config: VGGishConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3, c4 = config.channels
        layers: list[nn.Module] = []
        for spec in (c1, "M", c2, "M", c3, c3, "M", c4, c4, "M"):
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                c_in = next((m.out_channels for m in reversed(layers) if isinstance(m, nn.Conv2d)), 1)
                layers += [nn.Conv2d(c_in, int(spec), 3, padding=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(c4 * 6 * 4, config.hidden_dim), nn.ReLU(True),
            nn.Linear(config.hidden_dim, config.hidden_dim), nn.ReLU(True),
            nn.Linear(config.hidden_dim, config.embedding_dim),
        )

    def forward(self, examples: Tensor) -> Tensor:
        """``[B, 1, 96, 64]`` log-mel examples -> ``[B, embedding_dim]`` embeddings."""
        x = self.features(examples)  # [B, C, 6, 4]
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # TF (frames, bands, channels) flatten order
        x = self.embeddings(x)
        return F.relu(x) if self.config.final_relu else x


def load_vggish(path: str | os.PathLike[str], config: VGGishConfig | None = None) -> VGGish:
    """Load torchvggish's ``vggish-*.pth`` (a bare state dict; widths inferred from its shapes).

    Raises:
        CheckpointError: unreadable file or keys/shapes that do not fit VGGish.
    """
    state = load_torch_checkpoint(path)
    if not isinstance(state, dict) or "features.0.weight" not in state:
        raise CheckpointError(f"{path}: not a torchvggish state dict (no features.0.weight)")
    if config is None:
        chans = tuple(int(state[f"features.{i}.weight"].shape[0]) for i in (0, 3, 6, 11))
        config = VGGishConfig(channels=chans, hidden_dim=int(state["embeddings.0.weight"].shape[0]),  # type: ignore[arg-type]
                              embedding_dim=int(state["embeddings.4.weight"].shape[0]))
    model = VGGish(config)
    load_state_dict_strict(model, state, source=str(path))
    return model.eval()


class VGGishEmbedder(AudioEmbedder):
    """FAD embedder as in audioldm_eval: first channel, DC removal, 16 kHz, pad to >= 2 s; one frame per 0.96 s."""

    name = "vggish"
    sample_rate = SAMPLE_RATE

    def __init__(self, model: VGGish, weights_id: str = "random") -> None:
        self.model = model.eval()
        self._weights_id = weights_id

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str]) -> VGGishEmbedder:
        return cls(load_vggish(path), file_fingerprint(path))

    @property
    def cache_id(self) -> str:
        return f"vggish-{self._weights_id}"

    @torch.inference_mode()
    def run(self, wav: Tensor, sample_rate: int) -> EmbedderOutput:
        x = prepare_mono(wav, sample_rate, SAMPLE_RATE, channel="first", remove_dc=True, min_samples=2 * SAMPLE_RATE)
        frames = self.model(vggish_examples(x)).float()
        return EmbedderOutput(frames=frames, clip=frames.mean(0))
