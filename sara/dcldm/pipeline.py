"""DCLDM: text -> (text states, AudioGen LM -> tokens -> acoustic encoding) -> DualConditionUNet sampling with
Eq. 8 guidance -> mel VAE -> HiFi-GAN -> 16 kHz waveform.

A subclass of :class:`~sara.pipelines.latent_diffusion.LatentDiffusion`: the same frame arithmetic, samplers,
``log_mel`` / ``encode_text`` / ``decode_latents`` / ``generate_latents`` / ``__call__``, plus
:meth:`DCLDM.acoustic_encoding` and :meth:`DCLDM.acoustic_from_audio`.

Guidance (the paper's Eq. 8, w = 4 by default): ``v = u + w (c - u)`` where ``c`` sees (text, acoustic) and ``u``
sees the empty-text encodings of **both** conditions: the text conditioner's unconditional input (Tango's ""
encoding for T5, zero states for the MiniLM demo) and :func:`~sara.dcldm.acoustic.null_acoustic`, which is what
training's joint condition dropout feeds the model (:mod:`sara.dcldm.training`).  Random numbers: the initial
latent and the DDPM noise come from one generator seeded by ``seed`` (as LatentDiffusion); the AudioGen tokens
from AudioGen's own generator seeded by the same ``seed``.

``conditioning="acoustic"`` is the paper's "LDM with the acoustic encoding only" baseline: the UNet's own
cross-attention reads the acoustic states (its ``cross_attention_dim`` is the acoustic width, no added modules,
no text encoder; the unconditional input is the null acoustic condition).

Release (``class "DCLDM"``)::

    config.json   {"config": {"text_encoder", "mel", "scheduler", "defaults", "acoustic", "conditioning",
                   "placements"}, "components": {"unet", "vae", "vocoder", "audiogen"}}
    unet/         DualConditionUNet release (``unet.*`` Tango weights + ``acoustic.<position>.<i>.*``)
    vae/ vocoder/ the mel VAE and HiFi-GAN releases
    audiogen/     an AudioGen release with its codec
                  (``components`` may name other directories for vae / vocoder / audiogen instead, absolute or
                  relative to the release: e.g. the bundled DC-LDM demo shares the LDM and AudioGen demos')
    text_encoder/ a T5 saved with the release when it is not a named directory (as LatentDiffusion)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from sara.dcldm.acoustic import AcousticConfig, AcousticEncoder
from sara.dcldm.unet import DualConditionUNet
from sara.errors import CheckpointError, ConfigError
from sara.ldm.schedulers import SamplerName, SchedulerConfig, make_scheduler
from sara.pipelines.latent_diffusion import (
    LatentDiffusion,
    LDMDefaults,
    check_duration,
    check_prompts,
)
from sara.serialization import FORMAT_VERSION, config_from_dict, config_to_dict, upgrade_release_config

__all__ = ["CONDITIONINGS", "DCLDM", "RELEASE_CLASS", "Condition", "dcldm_defaults"]

RELEASE_CLASS = "DCLDM"
Conditioning = Literal["dual", "acoustic"]
CONDITIONINGS: tuple[str, ...] = ("dual", "acoustic")
Condition = tuple[Tensor, Tensor]  # (states [B, L, D], mask [B, L] bool)
_CONFIG_KEYS = {"text_encoder", "mel", "scheduler", "defaults", "acoustic", "conditioning", "placements"}


def dcldm_defaults() -> LDMDefaults:
    """Tango's generation defaults with the paper's best guidance for DC-LDM, w = 4."""
    return LDMDefaults(guidance_scale=4.0)


class DCLDM(LatentDiffusion):
    """The dual-conditioned latent diffusion pipeline.

    Args:
        unet: a :class:`~sara.dcldm.unet.DualConditionUNet`.
        vae / vocoder / mel_config / scheduler_config / text_encoder_spec: as LatentDiffusion.
        text_encoder: the text conditioner (None with ``conditioning="acoustic"``).
        audiogen: a :class:`sara.audiogen.AudioGen` with its codec (frozen).
        acoustic_config: which acoustic encoding (E_t2a / E'_t2a), positions, LM sampling.
        conditioning: ``"dual"`` (DC-LDM) or ``"acoustic"`` (acoustic-only LDM baseline).
        defaults: generation defaults (None: :func:`dcldm_defaults`, w = 4).
    """

    def __init__(self, unet: DualConditionUNet, vae: Any, vocoder: Any, text_encoder: Any, audiogen: Any, *,
                 acoustic_config: AcousticConfig | None = None, conditioning: Conditioning = "dual",
                 mel_config: Any = None, scheduler_config: SchedulerConfig | None = None,
                 defaults: LDMDefaults | None = None, text_encoder_spec: Any = None) -> None:
        if conditioning not in CONDITIONINGS:
            raise ConfigError(f"conditioning must be one of {list(CONDITIONINGS)}, got {conditioning!r}")
        if not isinstance(unet, DualConditionUNet):
            raise ConfigError("DCLDM needs a DualConditionUNet (wrap the UNet first)")
        self.conditioning = conditioning
        self.audiogen = audiogen.eval()
        self.acoustic = AcousticEncoder(audiogen, acoustic_config, vae=vae, mel_config=mel_config)
        # the acoustic-only baseline's "text" input is the acoustic encoding (checked against the UNet width)
        text = self.acoustic if conditioning == "acoustic" else text_encoder
        super().__init__(unet, vae, vocoder, text, mel_config=mel_config, scheduler_config=scheduler_config,
                         defaults=defaults if defaults is not None else dcldm_defaults(),
                         text_encoder_spec=text_encoder_spec)
        _check_acoustic_width(self)

    @classmethod
    def from_latent_diffusion(cls, ldm: LatentDiffusion, audiogen: Any, placements: tuple[str, ...] = ("down1", "up1"),
                              acoustic_config: AcousticConfig | None = None) -> DCLDM:
        """A fresh DC-LDM from a Tango / LDM pipeline: its UNet wrapped with zero-initialised acoustic modules
        (so it generates exactly what ``ldm`` generates until trained).  The UNet is wrapped in place: ``ldm``
        itself can no longer run it (the hooks refuse calls outside the wrapper)."""
        acoustic = AcousticEncoder(audiogen, acoustic_config, vae=ldm.vae, mel_config=ldm.mel_config)
        unet = DualConditionUNet(ldm.unet, placements, acoustic.dim)
        return cls(unet, ldm.vae, ldm.vocoder, ldm.text_encoder, audiogen, acoustic_config=acoustic.config,
                   mel_config=ldm.mel_config, scheduler_config=ldm.scheduler_config,
                   text_encoder_spec=ldm.text_encoder_spec)

    @property
    def placements(self) -> tuple[str, ...]:
        """Where the acoustic modules sit (``()`` for the acoustic-only baseline)."""
        return self.unet.placements

    def to(self, device: str | torch.device) -> DCLDM:
        """Move every component (AudioGen included) to ``device``."""
        super().to(device)
        self.audiogen.to(device)
        return self

    def networks(self) -> list[torch.nn.Module]:
        """The LatentDiffusion networks and AudioGen's (its token LM's transformer and codec decoder)."""
        return super().networks() + self.audiogen.networks()

    # ------------------------------------------------------------------------------------ conditions
    def acoustic_seconds(self, duration: float | None) -> float:
        """Seconds of audio the generated latents cover for ``duration`` (frames rounded up, as generated)."""
        frames = self.num_frames(self.defaults.duration if duration is None else duration)
        return frames * self.mel_config.hop_length / self.mel_config.sample_rate

    @torch.no_grad()
    def acoustic_encoding(self, prompts: str | list[str], duration: float | None = None,
                          seed: int | None = None) -> Condition:
        """text -> AudioGen LM -> tokens -> acoustic states ``[B, F, D]`` + mask ``[B, F]`` on :attr:`device`
        (F = 50 per second for E_t2a; tokens cover the generated length)."""
        states, mask = self.acoustic.from_prompts(check_prompts(prompts), self.acoustic_seconds(duration), seed)
        return states.to(self.device), mask.to(self.device)

    @torch.no_grad()
    def acoustic_from_audio(self, waveform: Tensor, sample_rate: int) -> Condition:
        """A reference clip ``[B, N]`` or ``[N]`` (any rate) -> its codec tokens -> acoustic states + mask."""
        states, mask = self.acoustic.from_audio(waveform, sample_rate)
        return states.to(self.device), mask.to(self.device)

    def _guidance_inputs(self, prompts: list[str], acoustic: Condition, guided: bool
                         ) -> tuple[Condition, Condition | None, dict[str, Tensor] | None]:
        """``(cond, uncond, unet_kwargs)`` for :func:`~sara.ldm.sampling.sample_latents` (uncond rows first)."""
        states, mask = acoustic
        null_states, null_mask = _null_like(states)
        if self.conditioning == "acoustic":
            return acoustic, ((null_states, null_mask) if guided else None), None
        cond = self.encode_text(prompts)
        if not guided:
            return cond, None, {"acoustic_states": states, "acoustic_mask": mask}
        kwargs = {"acoustic_states": torch.cat([null_states, states]), "acoustic_mask": torch.cat([null_mask, mask])}
        return cond, self.encode_unconditional(cond), kwargs

    # ------------------------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate_latents(self, prompts: str | list[str], steps: int | None = None, guidance_scale: float | None = None,
                         latents: Tensor | None = None, step_noise: Tensor | None = None, seed: int | None = None,
                         sampler: SamplerName | None = None, duration: float | None = None, *,
                         acoustic: Condition | None = None, progress: bool = False) -> Tensor:
        """Sample diffusion-space latents ``[B, C, frames / f, n_mels / f]`` with Eq. 8 guidance.

        Args:
            acoustic: a precomputed acoustic condition ``(states [B or 1, F, D], mask)`` (e.g.
                :meth:`acoustic_from_audio`); None generates it from the prompts with AudioGen (seeded by ``seed``).
            prompts / steps / guidance_scale / latents / step_noise / seed / sampler / duration / progress:
                as :meth:`LatentDiffusion.generate_latents` (guidance default 4).
        """
        from sara.ldm.sampling import sample_latents

        run = self._sampling_setup(prompts, steps, guidance_scale, latents, step_noise, seed, sampler, duration)
        acoustic = self._acoustic_input(run.prompts, acoustic, self._latent_seconds(run.latents), seed)
        cond, uncond, kwargs = self._guidance_inputs(run.prompts, acoustic, run.guidance_scale > 1)
        return sample_latents(self.unet, make_scheduler(run.sampler, self.scheduler_config), cond, uncond,
                              run.latents, run.steps, run.guidance_scale, step_noise=step_noise,
                              generator=run.generator, progress=progress, unet_kwargs=kwargs)

    def _acoustic_input(self, prompts: list[str], acoustic: Condition | None, seconds: float,
                        seed: int | None) -> Condition:
        """The given acoustic condition (broadcast to the batch, checked) or AudioGen's for the prompts."""
        if acoustic is None:
            states, mask = self.acoustic.from_prompts(prompts, seconds, seed)
        else:
            states, mask = acoustic
            if states.ndim != 3 or states.shape[0] not in (1, len(prompts)) or mask.shape != states.shape[:2]:
                raise ConfigError(f"acoustic must be (states [B, F, D], mask [B, F]) for {len(prompts)} prompts, "
                                  f"got {list(states.shape)}, {list(mask.shape)}")
            states, mask = states.expand(len(prompts), -1, -1), mask.expand(len(prompts), -1)
        return states.to(self.device, torch.float32), mask.to(self.device, torch.bool)

    @torch.no_grad()
    def __call__(self, prompts: str | list[str], duration: float | None = None, steps: int | None = None,
                 guidance_scale: float | None = None, seed: int | None = None, sampler: SamplerName | None = None, *,
                 latents: Tensor | None = None, step_noise: Tensor | None = None, acoustic: Condition | None = None,
                 progress: bool = False) -> Tensor:
        """Generate audio ``[B, round(duration * 16000)]`` float32 at 16 kHz (see :meth:`generate_latents`)."""
        if duration is None:
            duration = self.defaults.duration if latents is None else self._latent_seconds(latents)
        duration = check_duration(duration)
        z = self.generate_latents(prompts, steps, guidance_scale, latents=latents, step_noise=step_noise, seed=seed,
                                  sampler=sampler, duration=duration, acoustic=acoustic, progress=progress)
        return self.decode_latents(z)[:, : round(duration * self.sample_rate)]

    # ------------------------------------------------------------------------------------ releases
    def save_pretrained(self, directory: str | os.PathLike[str], *, audiogen_path: str | None = None,
                        links: dict[str, str] | None = None) -> Path:
        """Write a DCLDM release (see the module docstring).

        Args:
            audiogen_path: record this AudioGen directory (absolute, or relative to ``directory``) instead of
                writing ``audiogen/`` (the same as ``links={"audiogen": audiogen_path}``).
            links: components (``"vae"``, ``"vocoder"``, ``"audiogen"``) recorded as existing directories instead
                of written, e.g. ``{"vae": "../ldm-demo/vae"}`` to share a bundled demo's weights; each must
                already hold that component (checked) and is not re-written.

        Raises:
            ConfigError: an unknown component name, or a linked directory that does not exist.
        """
        from sara.pipelines.ldm_release import save_text_encoder

        out = Path(directory)
        links = _check_links(out, {**(links or {}), **({"audiogen": audiogen_path} if audiogen_path else {})})
        out.mkdir(parents=True, exist_ok=True)
        spec = None if self.conditioning == "acoustic" else save_text_encoder(
            self.text_encoder, self.text_encoder_spec, out)
        self.unet.save_pretrained(out / "unet")
        for name in ("vae", "vocoder", "audiogen"):
            if name not in links:
                getattr(self, name).save_pretrained(out / name)
        _write_config(self, out, spec, {name: links.get(name, name) for name in ("vae", "vocoder", "audiogen")})
        return out

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], *, device: str | torch.device = "cpu",
                        dtype: str | torch.dtype | None = None, compile: bool = False) -> DCLDM:
        """Load a DCLDM release (``dtype`` / ``compile``: see :meth:`set_inference`).

        Raises:
            CheckpointError: not a DCLDM release, missing component directories, or weights that do not fit.
        """
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        p = Path(path)
        payload = _read_config(p)
        return _build_from_release(cls, p, payload).to(device).set_inference(dtype=dtype, compile=compile)


# ---------------------------------------------------------------------------------------- helpers


def _null_like(states: Tensor) -> Condition:
    """The null acoustic condition padded to ``states``' length: zeros, only the first frame unmasked."""
    mask = torch.zeros(states.shape[:2], dtype=torch.bool, device=states.device)
    mask[:, 0] = True
    return torch.zeros_like(states), mask


def _check_acoustic_width(pipe: DCLDM) -> None:
    if pipe.placements and pipe.unet.acoustic_dim != pipe.acoustic.dim:
        raise CheckpointError(f"DCLDM parts do not fit: acoustic modules take {pipe.unet.acoustic_dim}-d states, "
                              f"the {pipe.acoustic.config.kind} encoding is {pipe.acoustic.dim}-d")
    if pipe.conditioning == "dual" and not pipe.placements:
        raise CheckpointError("a dual-conditioned DCLDM needs at least one acoustic placement")
    if pipe.conditioning == "acoustic" and pipe.placements:
        raise CheckpointError("the acoustic-only DCLDM feeds the UNet's own cross-attention; it has no placements")


def _check_links(out: Path, links: dict[str, str]) -> dict[str, str]:
    """``links`` checked: known component names whose directories (relative to ``out``) hold a config.json."""
    unknown = sorted(set(links) - {"vae", "vocoder", "audiogen"})
    if unknown:
        raise ConfigError(f"links: unknown DCLDM components {unknown} (linkable: vae, vocoder, audiogen)")
    for name, target in links.items():
        if not (Path(os.path.normpath(out / target)) / "config.json").is_file():  # out may not exist yet
            raise ConfigError(f"links: {name} -> {target}: no release there (relative to {out})")
    return links


def _write_config(pipe: DCLDM, out: Path, spec: Any, parts: dict[str, str]) -> None:
    config = {"text_encoder": None if spec is None else config_to_dict(spec), "mel": config_to_dict(pipe.mel_config),
              "scheduler": config_to_dict(pipe.scheduler_config), "defaults": config_to_dict(pipe.defaults),
              "acoustic": config_to_dict(pipe.acoustic.config), "conditioning": pipe.conditioning,
              "placements": list(pipe.placements)}
    payload = {"format_version": FORMAT_VERSION, "class": RELEASE_CLASS, "config": config,
               "components": {"unet": "unet", **parts}}
    (out / "config.json").write_text(json.dumps(payload, indent=2) + "\n")


def _read_config(p: Path) -> dict[str, Any]:
    try:
        payload = upgrade_release_config(json.loads((p / "config.json").read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{p}: not a DCLDM release ({exc})") from None
    if payload.get("class") != RELEASE_CLASS:
        raise CheckpointError(f"{p}: holds a {payload.get('class')!r}, not a {RELEASE_CLASS!r} release")
    unknown = sorted(set(payload.get("config", {})) - _CONFIG_KEYS)
    if unknown:
        raise CheckpointError(f"{p / 'config.json'}: unknown DCLDM config keys {unknown}")
    return payload


def _build_from_release(cls: type[DCLDM], p: Path, payload: dict[str, Any]) -> DCLDM:
    """Load every component a DCLDM ``config.json`` names."""
    from sara.audiogen import AudioGen
    from sara.mel.frontend import MelConfig
    from sara.mel.hifigan import HiFiGAN
    from sara.mel.vae import MelVAE
    from sara.pipelines.ldm_release import ldm_text_encoder, text_spec

    cfg, parts = payload["config"], payload.get("components", {})
    dirs = {k: p / parts.get(k, k) for k in ("unet", "vae", "vocoder", "audiogen")}
    missing = [k for k, d in dirs.items() if not d.is_dir()]
    if missing:
        raise CheckpointError(f"{p}: DCLDM release lacks component directories {missing}")
    spec = None if cfg.get("text_encoder") is None else text_spec(cfg["text_encoder"])
    text = None if spec is None else ldm_text_encoder(spec, p)
    return cls(DualConditionUNet.from_pretrained(dirs["unet"]), MelVAE.from_pretrained(dirs["vae"]),
               HiFiGAN.from_pretrained(dirs["vocoder"]), text, AudioGen.from_pretrained(dirs["audiogen"]),
               acoustic_config=config_from_dict(AcousticConfig, cfg.get("acoustic", {})),
               conditioning=cfg.get("conditioning", "dual"),
               mel_config=config_from_dict(MelConfig, cfg.get("mel", {})),
               scheduler_config=config_from_dict(SchedulerConfig, cfg.get("scheduler", {})),
               defaults=config_from_dict(LDMDefaults, cfg.get("defaults", {})), text_encoder_spec=spec)
