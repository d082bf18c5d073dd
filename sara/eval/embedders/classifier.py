"""A small audio classifier trained on the open corpus, so FD / KL / IS-style numbers work offline.

It plays the role PANNs CNN14 plays in audioldm_eval, on the corpus' own classes:

    wav 16 kHz [B, T] -> log-mel [B, N, n_mels] (100 Hz) -> standardise (train-set stats)
      -> Conv1d(k5) GELU -> Conv1d(k5, stride 2) GELU -> Conv1d(k3) GELU = frames [B, N/2, E] (50 Hz)
      -> mean + max over time = clip [B, E] -> Linear = logits [B, classes] (softmax)

Release directory via :class:`~sara.serialization.PretrainedMixin` (``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sara.audio.dsp import mel_filterbank
from sara.errors import ConfigError
from sara.eval.embedders.base import AudioEmbedder, EmbedderOutput, file_fingerprint, prepare_mono
from sara.eval.embedders.mel import MelConfig, log_mel
from sara.serialization import PretrainedMixin

__all__ = ["AudioClassifier", "ClassifierConfig", "ClassifierEmbedder", "ClassifierEnsemble", "load_classifier"]


@dataclass(frozen=True)
class ClassifierConfig:
    """Classifier hyper-parameters; ``class_names`` fixes the output order."""

    class_names: tuple[str, ...] = ("a", "b")
    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    n_mels: int = 64
    hidden_dim: int = 128
    embedding_dim: int = 128

    def __post_init__(self) -> None:
        if len(self.class_names) < 2:
            raise ValueError("a classifier needs at least two classes")

    @classmethod
    def small(cls, class_names: tuple[str, ...]) -> ClassifierConfig:
        return cls(class_names=class_names)

    @classmethod
    def tiny(cls, class_names: tuple[str, ...] = ("a", "b")) -> ClassifierConfig:
        return cls(class_names=class_names, n_mels=16, hidden_dim=16, embedding_dim=16)

    @property
    def mel(self) -> MelConfig:
        return MelConfig(sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length, n_mels=self.n_mels)


class AudioClassifier(PretrainedMixin, nn.Module):
    """Frame-level conv classifier; see the module docstring for shapes."""

    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("feature_mean", torch.zeros(config.n_mels))  # persistent: data statistics
        self.register_buffer("feature_std", torch.ones(config.n_mels))
        self.register_buffer("mel_fb", mel_filterbank(config.n_fft // 2 + 1, config.n_mels, config.sample_rate),
                             persistent=False)
        h, e = config.hidden_dim, config.embedding_dim
        self.convs = nn.Sequential(
            nn.Conv1d(config.n_mels, h, 5, padding=2), nn.GELU(),
            nn.Conv1d(h, h, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(h, e, 3, padding=1), nn.GELU(),
        )
        self.head = nn.Linear(e, len(config.class_names))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> AudioClassifier:
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        return cls.from_release(path)

    def log_mel(self, wav: Tensor) -> Tensor:
        """``[B, T]`` 16 kHz -> ``[B, N, n_mels]`` log-mel (unnormalised)."""
        return log_mel(wav, self.config.mel, self.mel_fb)

    def forward_features(self, mel: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log-mel ``[B, N, n_mels]`` -> (frames ``[B, N', E]``, clip ``[B, E]``, logits ``[B, C]``)."""
        x = (mel - self.feature_mean) / self.feature_std
        frames = self.convs(x.transpose(1, 2)).transpose(1, 2)
        clip = frames.mean(1) + frames.amax(1)
        return frames, clip, self.head(clip)

    def forward(self, wav: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``wav [B, T]`` at 16 kHz -> see :meth:`forward_features`."""
        return self.forward_features(self.log_mel(wav))


class ClassifierEmbedder(AudioEmbedder):
    """:class:`AudioClassifier` behind the embedder interface (softmax logits over the corpus classes)."""

    name = "classifier"
    activation = "softmax"

    def __init__(self, model: AudioClassifier, weights_id: str = "in-memory") -> None:
        self.model = model.eval()
        self.sample_rate = model.config.sample_rate
        self._weights_id = weights_id

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> ClassifierEmbedder:
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        return cls(AudioClassifier.from_pretrained(path), file_fingerprint(path))

    @property
    def cache_id(self) -> str:
        return f"classifier-{self._weights_id}"

    @torch.inference_mode()
    def run(self, wav: Tensor, sample_rate: int) -> EmbedderOutput:
        x = prepare_mono(wav, sample_rate, self.sample_rate, min_samples=self.model.config.n_fft)
        frames, clip, logits = self.model(x[None])
        return EmbedderOutput(frames=frames[0].float(), clip=clip[0].float(), logits=logits[0].float())


class ClassifierEnsemble(AudioEmbedder):
    """Several :class:`ClassifierEmbedder` over the same classes (e.g. seeds of one recipe) as one scorer.

    Its class probabilities are the members' mean; ``logits`` are their log (``[C]``), so a softmax gives that mean
    back.  ``frames`` and ``clip`` are the first member's.  A scorer's own training seed moves coarse scores
    noticeably (README, Evaluation: the measured spread), so no single seed's draw should decide a comparison.

    Raises:
        ConfigError: no members, or members with other class names or sample rates.
    """

    name = "classifier-ensemble"
    activation = "softmax"

    def __init__(self, members: list[ClassifierEmbedder]) -> None:
        if not members:
            raise ConfigError("a classifier ensemble needs at least one classifier")
        first = members[0]
        for m in members[1:]:
            if m.model.config.class_names != first.model.config.class_names or m.sample_rate != first.sample_rate:
                raise ConfigError("the ensemble's classifiers differ in their classes or sample rate: train them "
                                  "on one manifest with the same --min-train-clips")
        self.members, self.model, self.sample_rate = list(members), first.model, first.sample_rate

    @property
    def cache_id(self) -> str:
        return "ensemble-" + "+".join(m.cache_id for m in self.members)

    def run(self, wav: Tensor, sample_rate: int) -> EmbedderOutput:
        outs = [m.run(wav, sample_rate) for m in self.members]
        probs = torch.stack([o.logits.softmax(-1) for o in outs]).mean(0)
        return EmbedderOutput(frames=outs[0].frames, clip=outs[0].clip, logits=probs.clamp_min(1e-30).log())


def load_classifier(paths: list[str | os.PathLike[str]]) -> ClassifierEmbedder | ClassifierEnsemble:
    """One release directory -> its :class:`ClassifierEmbedder`; several -> their :class:`ClassifierEnsemble`."""
    members = [ClassifierEmbedder.from_pretrained(p) for p in paths]
    return members[0] if len(members) == 1 else ClassifierEnsemble(members)
