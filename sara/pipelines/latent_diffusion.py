"""LatentDiffusion: text -> T5/MiniLM states -> UNet (DDPM v-prediction + CFG) on mel-VAE latents -> VAE decode
-> HiFi-GAN -> 16 kHz waveform.  Tango / AudioLDM compatible (declare-lab/tango ``models.py``, ``tango.py``).

Frame arithmetic (Tango): ``duration`` seconds -> ``frames = duration * 100`` mel frames (hop 160 at 16 kHz),
rounded **up** to a multiple of ``f * 2 ** (levels - 1)`` (``f``: the VAE's downsampling factor, ``levels``: the
UNet's resolution levels; 4 * 8 = 32 for Tango), so every UNet level sees whole latent rows; latents are
``[B, C, frames / f, n_mels / f]`` (``[B, 8, 256, 16]`` for 10.24 s); the vocoder gives ``frames * 160``
samples, trimmed to ``round(duration * 16000)``.  Random numbers: the initial latent is drawn first, then the
DDPM step noise, both from one generator seeded by ``seed``.

The release format is described in :mod:`sara.pipelines.ldm_release`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sara.errors import CheckpointError, ConfigError
from sara.ldm.schedulers import SAMPLERS, SamplerName, SchedulerConfig, make_scheduler
from sara.pipelines.ldm_release import (
    RELEASE_CLASS,
    ldm_text_encoder,
    read_release_config,
    release_class,
    save_text_encoder,
    set_release_defaults,
    text_spec,
    write_release_config,
)
from sara.runtime.inference import InferenceOptions
from sara.serialization import config_from_dict

__all__ = ["MAX_DURATION_S", "MAX_STEPS", "LDMDefaults", "LatentDiffusion", "check_duration", "check_guidance",
           "check_prompts", "check_sampler", "check_steps", "ldm_text_encoder", "set_release_defaults",
           "write_release_config"]

MAX_STEPS = 10_000  # sanity bound on sampler steps
MAX_DURATION_S = 120.0  # sanity bound: the UNet has no positional limit, memory grows with the length


@dataclass(frozen=True)
class LDMDefaults:
    """Generation settings used when a call gives none (Tango's: 200 DDPM steps, guidance 3, 10.24 s).

    Attributes:
        steps: sampler steps.
        guidance_scale: CFG scale ``w`` (guided iff > 1).
        duration: seconds.
        sampler: ``"ddpm"`` (Tango), ``"ddim"``, ``"dpmsolver++"``, ``"dpmsolver++karras"`` or ``"unipc"``.
    """

    steps: int = 200
    guidance_scale: float = 3.0
    duration: float = 10.24
    sampler: SamplerName = "ddpm"

    def __post_init__(self) -> None:
        for check, value in ((check_steps, self.steps), (check_guidance, self.guidance_scale),
                             (check_duration, self.duration), (check_sampler, self.sampler)):
            try:
                check(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None


def check_steps(steps: Any) -> int:
    """``steps`` as an int in ``[1, MAX_STEPS]`` (ConfigError otherwise)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or not math.isfinite(steps) \
            or int(steps) != steps or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be an integer in [1, {MAX_STEPS}], got {steps!r}")
    return int(steps)


def check_guidance(scale: Any) -> float:
    """``scale`` as a finite float >= 0 (ConfigError otherwise)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 0:
        raise ConfigError(f"guidance_scale must be a finite number >= 0, got {scale!r}")
    return float(scale)


def check_duration(duration: Any) -> float:
    """``duration`` in seconds as a float in ``(0, MAX_DURATION_S]`` (ConfigError otherwise)."""
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration) \
            or not 0 < duration <= MAX_DURATION_S:
        raise ConfigError(f"duration must be in (0, {MAX_DURATION_S:g}] seconds, got {duration!r}")
    return float(duration)


def check_sampler(name: Any) -> SamplerName:
    """``name`` if it is one of :data:`~sara.ldm.schedulers.SAMPLERS` (ConfigError otherwise)."""
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; choose from {list(SAMPLERS)}")
    return name


def check_prompts(prompts: str | list[str]) -> list[str]:
    """A list of non-empty captions (a single string is one caption)."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ConfigError("no prompts given")
    if any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ConfigError("empty prompt")
    return prompts



@dataclass
class SamplingSetup:
    """What :meth:`LatentDiffusion._sampling_setup` resolves for one ``generate_latents`` call."""

    prompts: list[str]
    steps: int
    guidance_scale: float
    sampler: SamplerName
    generator: torch.Generator | None
    latents: Tensor  # initial noise [B, C, H, W], unit variance

class LatentDiffusion(InferenceOptions):
    """The latent-diffusion text-to-audio pipeline (Tango's system), same call style as ``TextToAudio``.

    Args:
        unet: a diffusers ``UNet2DConditionModel`` (``in_channels`` = the VAE's latent channels,
            ``cross_attention_dim`` = the text width).
        vae: a :class:`~sara.mel.vae.MelVAE` (``decode`` takes diffusion-space latents).
        vocoder: a :class:`~sara.mel.hifigan.HiFiGAN` (``[B, T, n_mels] -> [B, T * hop]``).
        text_encoder: the text conditioner (``encode(prompts) -> (states, mask)`` and Tango's unconditional).
        mel_config: the log-mel front end (default: Tango's with the vocoder's mel bins).
        scheduler_config: the diffusion schedule (default: Tango's SD-2.1 schedule).
        defaults: settings used when a call gives none.
        text_encoder_spec: how to rebuild the text encoder from a release (None: saved as ``text_encoder/``).
    """

    def __init__(self, unet: Any, vae: Any, vocoder: Any, text_encoder: Any, *, mel_config: Any = None,
                 scheduler_config: SchedulerConfig | None = None, defaults: LDMDefaults | None = None,
                 text_encoder_spec: Any = None) -> None:
        from sara.mel.frontend import MelConfig

        self.unet, self.vae, self.vocoder = unet.eval(), vae.eval(), vocoder.eval()
        self.text_encoder = text_encoder
        self.mel_config = mel_config if mel_config is not None else MelConfig(n_mels=int(vocoder.n_mels))
        self.scheduler_config = scheduler_config if scheduler_config is not None else SchedulerConfig()
        self.defaults = defaults if defaults is not None else LDMDefaults()
        self.text_encoder_spec = text_encoder_spec
        self.unet_config_source: str | None = None  # where a Tango directory's UNet config came from
        _check_parts(self)

    # ------------------------------------------------------------------------------------ geometry

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz (16000)."""
        return int(self.vocoder.sample_rate)

    @property
    def device(self) -> torch.device:
        """Where the UNet's weights are (every component is moved together by :meth:`to`)."""
        return next(self.unet.parameters()).device

    @property
    def frame_multiple(self) -> int:
        """Mel frames must be a multiple of this: VAE factor x ``2 ** (UNet levels - 1)`` (32 for Tango)."""
        levels = len(self.unet.config.block_out_channels)
        return int(self.vae.downsample_factor) * 2 ** (levels - 1)

    def num_frames(self, duration: float) -> int:
        """Mel frames generated for ``duration`` seconds: ``duration * 100`` rounded up to :attr:`frame_multiple`."""
        duration = check_duration(duration)
        exact = round(duration * self.mel_config.sample_rate / self.mel_config.hop_length, 6)
        m = self.frame_multiple
        return max(m, math.ceil(exact / m) * m)

    def latent_shape(self, batch: int, frames: int) -> tuple[int, int, int, int]:
        """``(B, C, frames / f, n_mels / f)`` diffusion latents for ``frames`` mel frames."""
        f = int(self.vae.downsample_factor)
        return batch, int(self.unet.config.in_channels), frames // f, self.mel_config.n_mels // f

    # ------------------------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], *, device: str | torch.device = "cpu",
                        dtype: str | torch.dtype | None = None, compile: bool = False) -> LatentDiffusion:
        """Load a Tango directory (declare-lab/tango layout) or a sara LatentDiffusion release.

        ``dtype`` / ``compile``: the networks' compute dtype and compilation (:meth:`set_inference`).

        Raises:
            CheckpointError: neither layout, missing files or keys (one line naming them).
            SaraError: the named T5 tokenizer/config is not available offline.
        """
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        from sara.pipelines.tango import is_tango_dir

        p = Path(path)
        if is_tango_dir(p):
            pipe = cls._from_tango(p)
        elif release_class(p) == RELEASE_CLASS:
            pipe = cls._from_release(p)
        else:
            raise CheckpointError(f"{p}: neither a Tango directory (main_config.json, pytorch_model_main.bin) "
                                  f"nor a sara LatentDiffusion release (config.json with class {RELEASE_CLASS!r})")
        return pipe.to(device).set_inference(dtype=dtype, compile=compile)

    @classmethod
    def _from_tango(cls, p: Path) -> LatentDiffusion:
        """Build from a Tango directory (see :mod:`sara.pipelines.tango` for how each name is resolved)."""
        from sara.pipelines.tango import load_tango_parts

        parts = load_tango_parts(p)
        pipe = cls(parts.unet, parts.vae, parts.vocoder, parts.text_encoder, mel_config=parts.mel_config,
                   scheduler_config=SchedulerConfig.tango())
        pipe.unet_config_source = parts.unet_config_source
        return pipe

    @classmethod
    def _from_release(cls, p: Path) -> LatentDiffusion:
        """Build from a sara release: ``config.json`` + ``unet/``, ``vae/``, ``vocoder/`` (+ ``text_encoder/``)."""
        from sara.ldm.unet import load_unet_release
        from sara.mel.frontend import MelConfig
        from sara.mel.hifigan import HiFiGAN
        from sara.mel.vae import MelVAE

        payload = read_release_config(p)
        cfg, parts = payload["config"], payload.get("components", {})
        missing = [k for k in ("unet", "vae", "vocoder") if not (p / parts.get(k, k)).is_dir()]
        if missing:
            raise CheckpointError(f"{p}: LatentDiffusion release lacks component directories {missing}")
        spec = text_spec(cfg.get("text_encoder", {"kind": "minilm"}))
        return cls(load_unet_release(p / parts.get("unet", "unet")), MelVAE.from_pretrained(p / parts.get("vae", "vae")),
                   HiFiGAN.from_pretrained(p / parts.get("vocoder", "vocoder")), ldm_text_encoder(spec, p),
                   mel_config=config_from_dict(MelConfig, cfg.get("mel", {})),
                   scheduler_config=config_from_dict(SchedulerConfig, cfg.get("scheduler", {})),
                   defaults=config_from_dict(LDMDefaults, cfg.get("defaults", {})), text_encoder_spec=spec)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write a sara release: ``config.json`` + ``unet/`` + ``vae/`` + ``vocoder/`` (+ ``text_encoder/`` for a
        T5 that is not already a named directory, e.g. one loaded from a Tango directory)."""
        from sara.ldm.unet import save_unet_release

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        spec = save_text_encoder(self.text_encoder, self.text_encoder_spec, out)
        save_unet_release(self.unet, out / "unet")
        self.vae.save_pretrained(out / "vae")
        self.vocoder.save_pretrained(out / "vocoder")
        write_release_config(out, spec, self.mel_config, self.scheduler_config, self.defaults)
        return out

    def to(self, device: str | torch.device) -> LatentDiffusion:
        """Move every component to ``device``."""
        for part in (self.unet, self.vae, self.vocoder, self.text_encoder):
            part.to(device)
        return self

    def networks(self) -> list[torch.nn.Module]:
        """The UNet, the VAE's decoder and the HiFi-GAN (what :meth:`set_inference` applies to)."""
        decoder = getattr(getattr(self.vae, "autoencoder", None), "decoder", None)
        return [self.unet, self.vocoder] + ([decoder] if isinstance(decoder, torch.nn.Module) else [])

    # ------------------------------------------------------------------------------------ parts

    def log_mel(self, waveform: Tensor, sample_rate: int, frames: int | None = None) -> Tensor:
        """Tango's ``wav_to_fbank``: any-rate ``[B, N]`` or ``[N]`` -> log-mel ``[B, frames, n_mels]``
        (frames None: 1024 = 10.24 s)."""
        from sara.mel.frontend import tango_log_mel

        return tango_log_mel(waveform, sample_rate, frames, self.mel_config)

    @torch.no_grad()
    def encode_text(self, prompts: str | list[str]) -> tuple[Tensor, Tensor]:
        """Text states ``[B, L, D]`` float32 and mask ``[B, L]`` bool (True on tokens) on :attr:`device`."""
        states, mask = self.text_encoder.encode(check_prompts(prompts))
        return states.to(self.device), mask.to(self.device)

    @torch.no_grad()
    def encode_unconditional(self, cond: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """The unconditional input CFG compares ``cond`` against, as long as ``cond``: ``[B, L, D]`` / ``[B, L]``.

        Tango's T5: "" tokenised with ``padding="max_length"`` to the conditional length
        (``encode_text_classifier_free``); the MiniLM demo: zero states (what its condition dropout trains on)."""
        states, mask = self.text_encoder.encode_unconditional(cond[0].shape[0], cond[0].shape[1])
        return states.to(self.device), mask.to(self.device)

    @torch.no_grad()
    def decode_latents(self, latents: Tensor) -> Tensor:
        """Diffusion-space latents ``[B, C, H, W]`` -> mel ``[B, 1, H f, W f]`` (VAE) -> ``[B, H f hop]`` float32."""
        mel = self.vae.decode(latents.to(self.device))
        return self.vocoder(mel[:, 0]).float()

    # ------------------------------------------------------------------------------------ generation

    @torch.no_grad()
    def generate_latents(
        self,
        prompts: str | list[str],
        steps: int | None = None,
        guidance_scale: float | None = None,
        latents: Tensor | None = None,
        step_noise: Tensor | None = None,
        seed: int | None = None,
        sampler: SamplerName | None = None,
        duration: float | None = None,
        *,
        progress: bool = False,
    ) -> Tensor:
        """Sample diffusion-space latents ``[B, C, frames / f, n_mels / f]`` (Tango's ``AudioDiffusion.inference``).

        Args:
            prompts: a caption or ``B`` captions.
            steps: sampler steps (None: ``defaults.steps``, 200).
            guidance_scale: CFG ``w``, guided iff > 1 with Tango's "" unconditional input (None: 3).
            latents: initial noise ``[B, C, H, W]`` (None: drawn from ``seed``; its ``H`` then fixes the length).
            step_noise: DDPM only: ``[steps, B, C, H, W]`` per-step variance noise (None: drawn from ``seed``).
            seed: seeds one CPU generator (initial noise first, then step noise); None uses the global RNG.
            sampler: ``"ddpm"``, ``"ddim"``, ``"dpmsolver++"``, ``"dpmsolver++karras"`` or ``"unipc"`` (None:
                ``defaults.sampler``).
            duration: seconds (None: ``defaults.duration``, or the length of ``latents``).
            progress: show a progress bar.

        Raises:
            ConfigError: invalid arguments (one line naming the argument).
        """
        from sara.ldm.sampling import sample_latents

        run = self._sampling_setup(prompts, steps, guidance_scale, latents, step_noise, seed, sampler, duration)
        cond = self.encode_text(run.prompts)
        uncond = self.encode_unconditional(cond) if run.guidance_scale > 1 else None
        return sample_latents(self.unet, make_scheduler(run.sampler, self.scheduler_config), cond, uncond,
                              run.latents, run.steps, run.guidance_scale, step_noise=step_noise,
                              generator=run.generator, progress=progress)

    def _sampling_setup(self, prompts: str | list[str], steps: int | None, guidance_scale: float | None,
                        latents: Tensor | None, step_noise: Tensor | None, seed: int | None,
                        sampler: SamplerName | None, duration: float | None) -> SamplingSetup:
        """Checked arguments with the release's defaults filled in, the seeded generator and the initial noise
        (drawn first from the generator, as Tango draws it)."""
        prompts = check_prompts(prompts)
        d = self.defaults
        steps = check_steps(d.steps if steps is None else steps)
        scale = check_guidance(d.guidance_scale if guidance_scale is None else guidance_scale)
        sampler = check_sampler(d.sampler if sampler is None else sampler)
        if step_noise is not None and sampler != "ddpm":
            raise ConfigError(f"step_noise applies to the 'ddpm' sampler only (the {sampler!r} sampler is deterministic)")
        gen = None if seed is None else torch.Generator().manual_seed(int(seed))
        x = self._initial_latents(len(prompts), duration, latents, gen)
        return SamplingSetup(prompts, steps, scale, sampler, gen, x)

    def _initial_latents(self, batch: int, duration: float | None, latents: Tensor | None,
                         gen: torch.Generator | None) -> Tensor:
        """The given initial noise (checked against the geometry) or ``randn`` of :meth:`latent_shape`."""
        if latents is None:
            frames = self.num_frames(self.defaults.duration if duration is None else duration)
            return torch.randn(self.latent_shape(batch, frames), generator=gen).to(self.device)
        if not isinstance(latents, Tensor) or latents.ndim != 4:
            raise ConfigError("latents must be a [B, C, H, W] tensor")
        frames = latents.shape[2] * int(self.vae.downsample_factor)
        want = self.latent_shape(batch, max(frames, self.frame_multiple))
        if tuple(latents.shape) != want or frames % self.frame_multiple:
            raise ConfigError(f"latents have shape {list(latents.shape)}; expected [{batch}, {want[1]}, H, {want[3]}] "
                              f"with H * {self.vae.downsample_factor} a multiple of {self.frame_multiple} frames")
        if duration is not None and self.num_frames(duration) != frames:
            raise ConfigError(f"duration {duration:g} s needs {self.num_frames(duration)} frames but the latents "
                              f"have {frames}")
        return latents.to(self.device, torch.float32)

    @torch.no_grad()
    def __call__(
        self,
        prompts: str | list[str],
        duration: float | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        sampler: SamplerName | None = None,
        *,
        latents: Tensor | None = None,
        step_noise: Tensor | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Generate audio: :meth:`generate_latents` then :meth:`decode_latents`, trimmed to ``duration``.

        Args:
            prompts: a caption or ``B`` captions.
            duration: seconds (None: ``defaults.duration``, 10.24 for Tango; the length of ``latents`` when given).
                Other lengths are generated at the next multiple of :attr:`frame_multiple` frames and trimmed.
            steps / guidance_scale / seed / sampler / latents / step_noise / progress: see :meth:`generate_latents`.

        Returns:
            ``[B, round(duration * 16000)]`` float32 waveforms at :attr:`sample_rate` (16 kHz).
        """
        if duration is None:
            duration = self.defaults.duration if latents is None else self._latent_seconds(latents)
        duration = check_duration(duration)
        z = self.generate_latents(prompts, steps, guidance_scale, latents=latents, step_noise=step_noise, seed=seed,
                                  sampler=sampler, duration=duration, progress=progress)
        return self.decode_latents(z)[:, : round(duration * self.sample_rate)]

    def _latent_seconds(self, latents: Tensor) -> float:
        """Seconds covered by initial noise ``[B, C, H, W]``: ``H * f * hop / sample_rate``."""
        frames = int(latents.shape[2]) * int(self.vae.downsample_factor) if latents.ndim == 4 else 0
        return frames * self.mel_config.hop_length / self.mel_config.sample_rate


# ---------------------------------------------------------------------------------------- helpers


def _check_parts(pipe: LatentDiffusion) -> None:
    """One-line CheckpointError when the components do not fit together."""
    unet, vae, voc, mel = pipe.unet.config, pipe.vae, pipe.vocoder, pipe.mel_config
    pairs = (("UNet in_channels", unet.in_channels, "VAE latent channels", vae.latent_channels),
             ("UNet out_channels", unet.out_channels, "VAE latent channels", vae.latent_channels),
             ("UNet cross_attention_dim", unet.cross_attention_dim, "text width", pipe.text_encoder.dim),
             ("vocoder mel bins", voc.n_mels, "front-end mel bins", mel.n_mels),
             ("VAE mel bins", vae.config.n_mels, "front-end mel bins", mel.n_mels),
             ("vocoder hop", voc.hop_length, "front-end hop", mel.hop_length),
             ("vocoder sample rate", voc.sample_rate, "front-end sample rate", mel.sample_rate))
    for a, x, b, y in pairs:
        if int(x) != int(y):
            raise CheckpointError(f"LatentDiffusion parts do not fit: {a} {x} != {b} {y}")
