"""``SemanticVocoder``: semantic latents (25 Hz, 768-d) -> 24 kHz waveform by waveform flow matching.

Paper: SemanticVocoder (arXiv 2602.23333), generator from Flow2GAN (arXiv 2512.23278).  Decoding needs
only the generator; :meth:`SemanticVocoder.reconstruct` also needs a semantic encoder (``encode(wav, sr)
-> [B, D, N]``), passed in or found next to the checkpoint.

Memory: the generator is fully convolutional (no attention), so decode memory grows linearly with the
number of latent frames ``N``; batch items are decoded together.  Measured for the paper model on CPU:
about 7.5 MB per second of audio and item, plus 5 MB/s for the per-block condition projections that are
cached across Euler steps (~15 % faster for the paper model; skipped above ``max_cache_bytes`` = 1 GiB).  Inputs longer
than ``chunk_frames`` (250 frames = 10 s) are decoded in sequential chunks overlapping by ``overlap_frames``
(1 s, cross-faded; :mod:`sara.vocoder.chunking`), so the peak stays at the 10 s peak plus the output buffer
whatever the length (``benchmarks/bench_memory.py``: paper model, 60 s and 10 min).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from sara.audio.io import check_sample_rate, check_waveform
from sara.errors import AudioError, CheckpointError, ConfigError
from sara.flow.solvers import check_solver
from sara.runtime.inference import InferenceOptions
from sara.serialization import (
    config_to_dict,
    is_release_dir,
    load_release,
    load_state_dict_strict,
    release_config,
    save_release,
)
from sara.vocoder.chunking import crossfade_into, plan_chunks
from sara.vocoder.config import VocoderConfig
from sara.vocoder.loading import drop_rebuilt_buffers, find_encoder_weights, read_official
from sara.vocoder.model import VocoderGenerator, fix_length
from sara.vocoder.sampler import initial_noise
from sara.vocoder.solvers import make_grid
from sara.vocoder.solvers import sample as solver_sample

__all__ = ["LatentEncoder", "SemanticVocoder"]

ENCODER_DIR = "encoder"
LONG_SECONDS = 60.0  # reconstruct encodes longer inputs item by item with the encoder's block-wise path


class LatentEncoder(Protocol):
    """What the vocoder needs from a semantic encoder (``sara.SemanticEncoder`` satisfies it)."""

    frame_rate: float
    latent_dim: int

    def encode(self, waveform: Tensor, sample_rate: int) -> Tensor:  # [B, T] | [B, C, T] -> [B, D, N]
        ...


MAX_STEPS = 10_000  # sanity bound on Euler steps


def check_steps(steps: object) -> int:
    """``steps`` as an int; :class:`~sara.errors.ConfigError` unless it is an integer in ``[1, MAX_STEPS]``."""
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or not float(steps).is_integer() \
            or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be an integer in [1, {MAX_STEPS}], got {steps!r}")
    return int(steps)


def load_encoder(path: str | os.PathLike[str]) -> Any:
    """``sara.SemanticEncoder.from_pretrained(path)`` (imported lazily)."""
    from sara.encoder import SemanticEncoder

    return SemanticEncoder.from_pretrained(path)


class SemanticVocoder(nn.Module, InferenceOptions):
    """Flow-matching waveform decoder for semantic latents, with an optional bundled encoder.

    Args:
        config: generator configuration.
        encoder: semantic encoder used by :meth:`reconstruct` (optional).
        generator: an existing generator to wrap (e.g. from training); built from ``config`` when None.
    """

    config_class = VocoderConfig

    def __init__(
        self, config: VocoderConfig, encoder: nn.Module | None = None, generator: VocoderGenerator | None = None
    ) -> None:
        super().__init__()
        if generator is not None and generator.cfg != config:
            raise ValueError("generator was built from a different VocoderConfig")
        self.config = config
        self.generator = generator if generator is not None else VocoderGenerator(config)
        self.encoder = encoder
        self.encoder_path: Path | None = None  # weights to load on first use of the encoder
        self.encoder_hint = "pass encoder=... (a sara SemanticEncoder or its path)"
        self.max_cache_bytes = 1 << 30  # per-block condition cache budget (bytes)
        self.chunk_frames = 250  # decode longer inputs in overlapping chunks of this many latent frames (10 s)
        self.overlap_frames = 25  # cross-fade between chunks (1 s)

    # -------------------------------------------------------------------------------- properties
    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz (24000)."""
        return self.config.sample_rate

    @property
    def frame_rate(self) -> float:
        """Latent frame rate in Hz (25.0)."""
        return self.config.frame_rate

    @property
    def hop_length(self) -> int:
        """Output samples per latent frame (960)."""
        return self.config.hop_length

    @property
    def latent_dim(self) -> int:
        """Latent channels ``D`` (768)."""
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        """Device of the generator weights."""
        return next(self.generator.parameters()).device

    def networks(self) -> list[nn.Module]:
        """The generator (what :meth:`set_inference` applies to)."""
        return [self.generator]

    # ------------------------------------------------------------------------------------ decode
    @torch.inference_mode()
    def decode(
        self,
        latents: Tensor,
        steps: int | None = None,
        noise: Tensor | None = None,
        seed: int | None = None,
        *,
        solver: str = "euler",
        grid: str = "uniform",
    ) -> Tensor:
        """Generate waveforms from semantic latents.

        Args:
            latents: ``[B, D, N]`` (or ``[D, N]``) at 25 Hz.
            steps: sampler steps; ``config.default_steps`` (200) when None.
            noise: standard-normal ``[B, N * 960]`` initial noise (scaled by ``init_noise_scale`` here).
            seed: seed for the initial noise when ``noise`` is None.
            solver, grid: ODE solver and time grid (:mod:`sara.vocoder.solvers`); the default
                ``"euler"`` / ``"uniform"`` is the official sampler (one network call per step).

        Returns:
            ``[B, N * hop_length]`` float32 waveforms at ``sample_rate``, clamped to [-1, 1].
        """
        was_training = self.generator.training
        self.generator.eval()  # no branch dropout while sampling, whatever mode the module is in
        try:
            return self._decode(self._check_latents(latents), steps, noise, seed, (solver, grid))
        finally:
            self.generator.train(was_training)

    def _decode(self, latents: Tensor, steps: int | None, noise: Tensor | None, seed: int | None,
                sampler: tuple[str, str]) -> Tensor:
        batch, _, frames = latents.shape
        hop = self.hop_length
        check_solver(sampler[0])
        make_grid(1, sampler[1])  # ConfigError for an unknown grid, before any work
        x0 = initial_noise(batch, frames * hop, noise=noise, seed=seed, device=self.device)
        steps = self.config.default_steps if steps is None else check_steps(steps)
        spans = plan_chunks(frames, self.chunk_frames, self.overlap_frames)
        if len(spans) == 1:
            return self._sample(latents, self._scaled(x0), steps, sampler)
        out = torch.empty(batch, frames * hop, device=self.device)
        for i, (a, b) in enumerate(spans):  # noise scaled chunk by chunk: no second full-length buffer
            piece = self._sample(latents[..., a:b], self._scaled(x0[..., a * hop : b * hop]), steps, sampler)
            crossfade_into(out, piece, a * hop, self.overlap_frames * hop if i else 0)
        return out

    def _scaled(self, noise: Tensor) -> Tensor:
        """Standard-normal noise ``[B, L]`` -> the sampler's starting point (``init_noise_scale`` times it)."""
        return (noise * self.config.init_noise_scale).to(next(self.generator.parameters()).dtype)

    def _sample(self, latents: Tensor, x0: Tensor, steps: int, sampler: tuple[str, str] = ("euler", "uniform")
                ) -> Tensor:
        """One pass of the sampler: ``latents [B, D, N]``, scaled noise ``x0 [B, N * hop]`` -> ``[B, N * hop]``."""
        cond = self.generator.prepare_condition(latents, x0.shape[-1], self._cache_blocks(*x0.shape))
        return solver_sample(lambda x, t: self.generator(x, t, condition=cond), x0, steps, solver=sampler[0],
                             grid=sampler[1], pred_x1=self.config.pred_x1, clamp=self.config.clamp).float()

    def _check_latents(self, latents: Tensor) -> Tensor:
        if not isinstance(latents, Tensor):
            raise AudioError(f"latents must be a tensor, got {type(latents).__name__}")
        if latents.dim() == 2:
            latents = latents.unsqueeze(0)
        if latents.dim() != 3 or latents.shape[1] != self.latent_dim or latents.shape[2] == 0:
            raise AudioError(f"latents must have shape [B, {self.latent_dim}, N>0], got {tuple(latents.shape)}")
        if not torch.isfinite(latents).all():
            raise AudioError("latents contain NaN or infinite values")
        return latents.to(self.device, next(self.generator.parameters()).dtype)

    def _cache_blocks(self, batch: int, num_samples: int) -> bool:
        """Cache every block's projected condition across steps unless that would exceed the budget."""
        cfg = self.config
        floats = sum(c * n * (1 + num_samples // hop) for c, n, hop in zip(cfg.channels, cfg.num_layers, cfg.hop_lengths))
        return batch * floats * 4 <= self.max_cache_bytes

    # ------------------------------------------------------------------------------- reconstruct
    def get_encoder(self) -> Any:
        """The semantic encoder, loading it on first use; raises CheckpointError when there is none."""
        if self.encoder is None and self.encoder_path is not None:
            self.set_encoder(load_encoder(self.encoder_path))
        if self.encoder is None:
            raise CheckpointError(f"reconstruct needs a semantic encoder: {self.encoder_hint}")
        return self.encoder

    def set_encoder(self, encoder: Any) -> None:
        """Attach ``encoder`` after checking that its latents fit this vocoder."""
        if int(encoder.latent_dim) != self.latent_dim or abs(float(encoder.frame_rate) - self.frame_rate) > 1e-6:
            raise CheckpointError(
                f"encoder gives {encoder.latent_dim}-d latents at {encoder.frame_rate} Hz but the vocoder "
                f"expects {self.latent_dim}-d at {self.frame_rate} Hz"
            )
        self.encoder = encoder.to(self.device) if isinstance(encoder, nn.Module) else encoder

    @torch.inference_mode()
    def reconstruct(self, waveform: Tensor, sample_rate: int, steps: int | None = None, seed: int | None = None, *,
                    solver: str = "euler", grid: str = "uniform") -> Tensor:
        """Encode ``waveform`` with the semantic encoder and decode it again.

        Args:
            waveform: ``[T]``, ``[B, T]`` or ``[B, C, T]`` at ``sample_rate`` Hz (channels are mixed by
                the encoder).
            sample_rate: input rate in Hz (any).
            steps, seed, solver, grid: as in :meth:`decode`.

        Returns:
            ``[B, round(T * 24000 / sample_rate)]`` waveforms at :attr:`sample_rate` (same duration).
        """
        if steps is not None:
            check_steps(steps)
        if not isinstance(waveform, Tensor):
            raise AudioError(f"reconstruct expects a tensor, got {type(waveform).__name__}")
        sample_rate = check_sample_rate(sample_rate, name="reconstruct")
        check_waveform(waveform, sample_rate, name="reconstruct", max_duration=None)
        encoder = self.get_encoder()
        wav = (waveform.unsqueeze(0) if waveform.dim() == 1 else waveform).to(self.device)
        if wav.shape[-1] > LONG_SECONDS * sample_rate and hasattr(encoder, "encode_long"):
            latents = torch.stack([encoder.encode_long(item, sample_rate) for item in wav])  # bounded memory
        else:
            latents = encoder.encode(wav, sample_rate)
        out = self.decode(latents, steps=steps, seed=seed, solver=solver, grid=grid)
        return fix_length(out, round(wav.shape[-1] * self.sample_rate / sample_rate))

    # -------------------------------------------------------------------------------- (de)serialise
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write a release directory; a bundled encoder goes to ``<directory>/encoder/``."""
        out = save_release(directory, type(self).__name__, config_to_dict(self.config), self.generator.state_dict())
        encoder = self.encoder
        if encoder is None and self.encoder_path is not None:
            encoder = self.get_encoder()
        if encoder is not None:
            encoder.save_pretrained(out / ENCODER_DIR)
        return out

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        encoder: Any | str | os.PathLike[str] | None = None,
        *,
        map_location: str | torch.device = "cpu",
    ) -> SemanticVocoder:
        """Load a sara release directory or an official checkpoint (directory or ``.pt`` file).

        Args:
            path: release dir, a directory holding ``semanticVocoder_epoch-270.pt`` (+ official
                ``config.json``), or the ``.pt`` file.
            encoder: an encoder object or a path for ``sara.SemanticEncoder.from_pretrained``; when None,
                a bundled ``encoder/`` or the official ``encoder_name`` weights found next to the
                checkpoint are used on demand.
            map_location: device for the weights.

        Raises:
            CheckpointError: missing files, unknown layout or mismatching weights.
        """
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        p = Path(path)
        if not p.exists():
            raise CheckpointError(f"{p}: no such file or directory")
        model = cls._from_release(p) if p.is_dir() and is_release_dir(p) else cls._from_official(p)
        model = model.to(map_location).eval()
        if encoder is not None:
            model.set_encoder(load_encoder(encoder) if isinstance(encoder, (str, os.PathLike)) else encoder)
        return model

    @classmethod
    def _from_release(cls, directory: Path) -> SemanticVocoder:
        payload, state = load_release(directory, cls.__name__)
        model = cls(release_config(VocoderConfig, payload, directory))
        load_state_dict_strict(model.generator, state, source=str(directory))
        if (directory / ENCODER_DIR).is_dir():
            model.encoder_path = directory / ENCODER_DIR
        else:
            model.encoder_hint = f"{directory} bundles no encoder; pass encoder=... (or --encoder PATH)"
        return model

    @classmethod
    def _from_official(cls, path: Path) -> SemanticVocoder:
        info = read_official(path)
        model = cls(info.config)
        state = drop_rebuilt_buffers(model.generator, info.state_dict, str(info.checkpoint_path))
        load_state_dict_strict(model.generator, state, source=str(info.checkpoint_path))
        folder = info.checkpoint_path.parent
        model.encoder_path = find_encoder_weights(info.encoder_name, folder)
        name = info.encoder_name or "dasheng_base"
        model.encoder_hint = (f"the official config names encoder {name!r}; put its weights (e.g. {name}.pt) "
                              f"next to the checkpoint in {folder}, or pass encoder=... (--encoder PATH)")
        return model
