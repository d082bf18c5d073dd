"""TextToAudio: text -> semantic latents (LatentDiT, flow matching + CFG) -> waveform (SemanticVocoder).

Random numbers are drawn in the official order: the DiT's initial latent, then the vocoder's initial noise.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from sara.dit.config import FRAME_RATE
from sara.dit.model import LatentDiT, TextContext
from sara.edit.methods import EditingMixin
from sara.errors import CheckpointError, ConfigError, SaraError
from sara.flow.sampling import cfg_velocity
from sara.flow.solvers import num_calls
from sara.flow.solvers import sample as solver_sample
from sara.flow.timesteps import make_schedule
from sara.pipelines.sampling import SamplerSettings, vocoder_sampler_kwargs
from sara.runtime.inference import InferenceOptions
from sara.serialization import FORMAT_VERSION, config_from_dict, read_release_config, write_text_atomically
from sara.text.base import TextEncoder, pad_states
from sara.text.factory import TextEncoderSpec, build_text_encoder

__all__ = ["MAX_STEPS", "TextToAudio"]

MAX_STEPS = 10_000  # sanity bound on sampling steps
DEFAULT_GUIDANCE = 3.5  # the official CFG scale


@dataclass
class _Conditioning:
    """Projected text for sampling: ``cond`` / ``uncond`` ``[B, S, context_dim]`` with masks ``[B, S]``."""

    cond: Tensor
    uncond: Tensor
    cond_mask: Tensor
    uncond_mask: Tensor


class TextToAudio(EditingMixin, InferenceOptions):
    """The text-to-audio pipeline (editing and long-form methods: :class:`sara.edit.EditingMixin`).

    Args:
        dit: the latent DiT (with its text projection).
        text_encoder: frozen text encoder whose ``dim`` equals ``dit.config.text_dim``.
        vocoder: a ``sara.SemanticVocoder`` (anything with ``decode(latents, steps=, noise=)`` and
            ``sample_rate`` / ``hop_length``); None allows latent generation only.
        encoder: optional ``sara.SemanticEncoder`` of the same latent space (for users who also encode).
        text_encoder_spec: how to rebuild the text encoder (stored by :meth:`save_pretrained`).
        default_duration: seconds generated when no duration is given (stored by :meth:`save_pretrained`);
            None: 10 s (the official length) or the DiT's maximum if shorter.
        default_guidance: CFG scale used when none is given (stored by :meth:`save_pretrained`);
            None: 3.5, the official default.
        sampling: default steps and solvers (stored by :meth:`save_pretrained`; :meth:`set_sampler`);
            None: the official sampler (:meth:`SamplerSettings.official`).
    """

    def __init__(self, dit: LatentDiT, text_encoder: TextEncoder, vocoder: Any | None, encoder: Any | None = None,
                 text_encoder_spec: TextEncoderSpec | None = None, default_duration: float | None = None,
                 default_guidance: float | None = None, sampling: SamplerSettings | None = None) -> None:
        if dit.config.text_dim is not None and dit.config.text_dim != text_encoder.dim:
            raise CheckpointError(f"text encoder width {text_encoder.dim} != DiT text_dim {dit.config.text_dim}")
        if vocoder is not None and getattr(vocoder, "latent_dim", dit.config.latent_dim) != dit.config.latent_dim:
            raise CheckpointError(f"vocoder latent_dim {vocoder.latent_dim} != DiT latent_dim {dit.config.latent_dim}")
        self.dit = dit.eval()
        self.text_encoder = text_encoder
        self.vocoder = vocoder.eval() if hasattr(vocoder, "eval") else vocoder
        self.encoder = encoder
        self.text_encoder_spec = text_encoder_spec
        if default_duration is None:
            default_duration = min(10.0, dit.config.max_seconds)
        if not (isinstance(default_duration, (int, float)) and math.isfinite(default_duration)
                and 0 < default_duration <= dit.config.max_seconds):
            raise CheckpointError(f"default_duration must be in (0, {dit.config.max_seconds:g}] s, "
                                  f"got {default_duration!r}")
        self.default_duration = float(default_duration)
        if default_guidance is None:
            default_guidance = DEFAULT_GUIDANCE
        if not (isinstance(default_guidance, (int, float)) and math.isfinite(default_guidance)
                and default_guidance >= 0):
            raise CheckpointError(f"default_guidance must be a finite number >= 0, got {default_guidance!r}")
        self.default_guidance = float(default_guidance)
        self.sampling = SamplerSettings.official() if sampling is None else sampling

    def set_sampler(self, *, steps: int | None = None, solver: str | None = None, vocoder_steps: int | None = None,
                    vocoder_solver: str | None = None, vocoder_grid: str | None = None) -> TextToAudio:
        """Change the default sampler of every generating / editing method (None keeps a setting); ``self``.

        Raises:
            ConfigError: an unknown solver or grid, or steps outside [1, 10000].
        """
        self.sampling = self.sampling.updated(steps=steps, solver=solver, vocoder_steps=vocoder_steps,
                                              vocoder_solver=vocoder_solver, vocoder_grid=vocoder_grid)
        return self

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz (24000)."""
        return int(self.vocoder.sample_rate) if self.vocoder is not None else 24000

    @property
    def max_duration(self) -> float:
        """Longest duration in seconds the DiT accepts."""
        return self.dit.config.max_seconds

    # ------------------------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], *, device: str | torch.device = "cpu",
                        dtype: str | torch.dtype | None = None, compile: bool = False) -> TextToAudio:
        """Load a sara release directory (``class == "TextToAudio"``) or an official model directory.

        ``dtype`` / ``compile``: the networks' compute dtype and compilation (:meth:`set_inference`).

        Raises:
            CheckpointError: not a known layout, or mismatching parts.
        """
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        from sara.dit.official_dir import is_official_dir

        p = Path(path)
        if not (p / "config.json").is_file():
            raise CheckpointError(f"{p}: no config.json (expected a TextToAudio release or an official model dir)")
        pipe = cls._from_official(p) if is_official_dir(p) else cls._from_release(p)
        return pipe.to(device).set_inference(dtype=dtype, compile=compile)

    @classmethod
    def _from_release(cls, p: Path) -> TextToAudio:
        payload = read_release_config(p)
        if payload["class"] != "TextToAudio":
            raise CheckpointError(f"{p}: holds a {payload['class']!r}, not a 'TextToAudio'")
        from sara.vocoder import SemanticVocoder

        spec = _text_encoder_spec(payload["config"], p)
        for part in ("dit", "vocoder"):
            if not (p / part).is_dir():
                raise CheckpointError(f"{p}: incomplete TextToAudio release (no {part}/ directory)")
        dit = LatentDiT.from_pretrained(p / "dit")
        encoder = None
        encoder_dir = next((d for d in (p / "encoder", p / "vocoder" / "encoder") if d.is_dir()), None)
        if encoder_dir is not None:
            from sara.encoder import SemanticEncoder

            encoder = SemanticEncoder.from_pretrained(encoder_dir)
        vocoder = SemanticVocoder.from_pretrained(p / "vocoder", encoder=encoder)
        text_encoder = build_text_encoder(spec, base_dir=p)
        return cls(dit, text_encoder, vocoder, encoder, text_encoder_spec=spec,
                   default_duration=payload["config"].get("default_duration"),
                   default_guidance=payload["config"].get("default_guidance"),
                   sampling=SamplerSettings.from_dict(payload["config"].get("sampling")))

    @staticmethod
    def set_default_guidance(directory: str | os.PathLike[str], scale: float) -> None:
        """Store ``scale`` as the default guidance of the release in ``directory`` (rewrites its ``config.json``).

        Raises:
            CheckpointError: not a sara TextToAudio release, or ``scale`` not a finite number >= 0.
        """
        if not (math.isfinite(scale) and scale >= 0):
            raise CheckpointError(f"default_guidance must be a finite number >= 0, got {scale!r}")
        path = Path(directory) / "config.json"
        payload = read_release_config(directory) if path.is_file() else {}
        if payload.get("class") != "TextToAudio":
            raise CheckpointError(f"{directory}: not a sara TextToAudio release")
        payload["config"]["default_guidance"] = float(scale)
        write_text_atomically(path, json.dumps(payload, indent=2) + "\n")

    @staticmethod
    def set_default_sampling(directory: str | os.PathLike[str], **changes: Any) -> SamplerSettings:
        """Store sampler defaults (:class:`SamplerSettings` fields; None keeps one) in the release in
        ``directory`` (rewrites its ``config.json``); returns the stored settings.

        Raises:
            CheckpointError: not a sara TextToAudio release.
            ConfigError: a bad setting (unknown solver, steps out of range).
        """
        path = Path(directory) / "config.json"
        payload = read_release_config(directory) if path.is_file() else {}
        if payload.get("class") != "TextToAudio":
            raise CheckpointError(f"{directory}: not a sara TextToAudio release")
        settings = SamplerSettings.from_dict(payload["config"].get("sampling")).updated(**changes)
        payload["config"]["sampling"] = settings.to_dict()
        write_text_atomically(path, json.dumps(payload, indent=2) + "\n")
        return settings

    @classmethod
    def _from_official(cls, p: Path) -> TextToAudio:
        from sara.dit.official import dit_from_official
        from sara.dit.official_dir import official_encoder, official_vocoder, read_official_dir
        from sara.text.t5 import T5TextEncoder, resolve_model_dir

        info = read_official_dir(p)
        dit = dit_from_official(info.backbone_config, info.state_dict)
        text_encoder = T5TextEncoder(resolve_model_dir(info.text_model_name, base_dir=p), state_dict=info.t5_state())
        encoder = official_encoder(info)
        vocoder = official_vocoder(info)
        if encoder is not None:
            vocoder.set_encoder(encoder)
        return cls(dit, text_encoder, vocoder, encoder, text_encoder_spec=None)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` + ``dit/`` + ``vocoder/`` (+ ``encoder/``, + ``text_encoder/`` for T5).

        Raises:
            SaraError: no text-encoder spec (e.g. a pipeline loaded from an official directory whose T5 is
                not saved here).
        """
        if self.vocoder is None:
            raise SaraError("cannot save a TextToAudio without a vocoder")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        spec = self._save_text_encoder(out)
        self.dit.save_pretrained(out / "dit")
        self.vocoder.save_pretrained(out / "vocoder")
        if self.encoder is not None and not (out / "vocoder" / "encoder").is_dir():
            self.encoder.save_pretrained(out / "encoder")
        payload = {"format_version": FORMAT_VERSION, "class": "TextToAudio",
                   "config": {"text_encoder": {"kind": spec.kind, "path": spec.path},
                              "default_duration": self.default_duration,
                              "default_guidance": self.default_guidance,
                              "sampling": self.sampling.to_dict()}}
        write_text_atomically(out / "config.json", json.dumps(payload, indent=2) + "\n")
        return out

    def _save_text_encoder(self, out: Path) -> TextEncoderSpec:
        spec = self.text_encoder_spec
        if spec is not None and spec.kind == "minilm" and spec.path is None:
            return spec
        model = getattr(self.text_encoder, "model", None)
        tokenizer = getattr(self.text_encoder, "tokenizer", None)
        if model is None or tokenizer is None:
            raise SaraError("cannot save this text encoder; give the pipeline a text_encoder_spec")
        model.save_pretrained(out / "text_encoder")
        tokenizer.save_pretrained(out / "text_encoder")
        kind = spec.kind if spec is not None else "t5"
        return TextEncoderSpec(kind=kind, path="text_encoder")

    def to(self, device: str | torch.device) -> TextToAudio:
        """Move every component to ``device``."""
        self.dit.to(device)
        self.text_encoder.to(device)
        if self.vocoder is not None:
            self.vocoder.to(device)
        if self.encoder is not None:
            self.encoder.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.dit.parameters()).device

    def networks(self) -> list[torch.nn.Module]:
        """The DiT and the vocoder's generator (what :meth:`set_inference` applies to)."""
        generator = getattr(self.vocoder, "generator", None)
        return [self.dit] + ([generator] if isinstance(generator, torch.nn.Module) else [])

    # --------------------------------------------------------------------------------- generation

    def num_frames(self, duration: float) -> int:
        """Latent frames for ``duration`` seconds: ``25 * duration`` rounded to a multiple of the patch size.

        Raises:
            SaraError: non-finite, non-positive or too long durations.
        """
        if not isinstance(duration, (int, float)) or not math.isfinite(duration) or duration <= 0:
            raise ConfigError(f"duration must be a positive number of seconds, got {duration!r}")
        if duration > self.max_duration + 1e-9:
            raise ConfigError(f"duration {duration:g} s exceeds this model's maximum of {self.max_duration:g} s")
        patch = self.dit.config.patch_size
        return max(patch, round(duration * FRAME_RATE / patch) * patch)

    @torch.no_grad()
    def encode_text(self, prompts: list[str], negative_prompt: str | list[str] | None = None) -> _Conditioning:
        """Encode and project prompts; the unconditional branch is zeros (official) or the negative prompt."""
        states, mask = self.text_encoder.encode(prompts)
        if negative_prompt is None:
            cond = self.dit.project_text(states.to(self.device))
            mask = mask.to(self.device)
            return _Conditioning(cond=cond, uncond=torch.zeros_like(cond), cond_mask=mask, uncond_mask=mask)
        negatives = [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else list(negative_prompt)
        if len(negatives) != len(prompts):
            raise SaraError(f"{len(negatives)} negative prompts for {len(prompts)} prompts")
        neg_states, neg_mask = self.text_encoder.encode(negatives)
        both, both_mask = _pad_pair(states, mask, neg_states, neg_mask)
        projected = self.dit.project_text(both.to(self.device))
        n, both_mask = len(prompts), both_mask.to(self.device)
        return _Conditioning(cond=projected[:n], uncond=projected[n:], cond_mask=both_mask[:n],
                             uncond_mask=both_mask[n:])

    @torch.no_grad()
    def generate_latents(
        self,
        prompts: list[str],
        duration: float | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        *,
        generator: torch.Generator | None = None,
        negative_prompt: str | list[str] | None = None,
        schedule: Literal["sway", "linear", "shifted"] = "sway",
        skip_noop: bool = True,
        progress: bool = False,
        solver: str | None = None,
    ) -> Tensor:
        """Sample latents ``[B, C, 25 * duration]`` by integrating the guided flow.

        Args:
            prompts: ``B`` captions.
            duration: seconds (None: :attr:`default_duration`).
            steps: sampling steps N (None: ``self.sampling.steps``, 100 officially).  The official sway
                schedule evaluates the model N + 1 times, the last a no-op; ``skip_noop`` saves that
                evaluation without changing the result.
            guidance_scale: CFG scale; CFG is on iff ``> 1`` (None: :attr:`default_guidance`).
            generator: RNG for the initial noise (global RNG when None).
            negative_prompt: replaces the zero unconditional embedding.
            schedule: 'sway' (official), 'linear' or 'shifted'.
            progress: show a progress bar over network calls.
            solver: ODE solver (None: ``self.sampling.solver``); ``"euler"`` is the official sampler, with
                the official integer timesteps; the others (:mod:`sara.flow.solvers`) feed the exact
                continuous timesteps.
        """
        prompts = _check_prompts(prompts)
        guidance_scale = self.default_guidance if guidance_scale is None else guidance_scale
        steps = self.sampling.steps if steps is None else steps
        solver = self.sampling.solver if solver is None else solver
        _check_sampling_args(steps, guidance_scale)
        frames = self.num_frames(self.default_duration if duration is None else duration)
        text = self.encode_text(prompts, negative_prompt if guidance_scale > 1 else None)
        x = torch.randn(len(prompts), self.dit.config.latent_dim, frames, generator=generator,
                        device="cpu").to(self.device)
        x = self.dit.drop_unseen(x)  # no-op for full-rank DiTs; see LatentDiT.drop_unseen
        velocity = self._velocity(text, guidance_scale, continuous_t=solver != "euler")
        sched = make_schedule(schedule, int(steps))
        bar = _progress_bar(sched.num_evals, progress)
        callback = None if bar is None else (lambda _i: bar.update(1))
        out = solver_sample(velocity, x, sched, solver, skip_noop=skip_noop, callback=callback)  # type: ignore[arg-type]
        if bar is not None:
            bar.close()
        return out

    def dit_calls(self, steps: int | None = None, solver: str | None = None) -> int:
        """DiT network calls of one generation (each on the doubled CFG batch when guidance is on)."""
        steps = self.sampling.steps if steps is None else steps
        solver = self.sampling.solver if solver is None else solver
        return num_calls(solver, make_schedule("sway", int(steps)))  # type: ignore[arg-type]

    def _velocity(self, text: _Conditioning, guidance_scale: float, *,
                  continuous_t: bool = False):  # noqa: ANN202 - VelocityFn
        """Velocity function with the text keys/values prepared once (batched [uncond; cond] for CFG).

        ``continuous_t``: feed the exact float timesteps ``[B]`` instead of the official truncation of the
        0-dim timestep to an integer (the higher-order solvers evaluate between the schedule's points).
        """
        def timesteps(x: Tensor, t: Tensor) -> Tensor:
            return t.expand(x.shape[0]).float() if continuous_t else t

        if guidance_scale > 1:
            both = self.dit.prepare_context(torch.cat([text.uncond, text.cond]),
                                            torch.cat([text.uncond_mask, text.cond_mask]))
            return cfg_velocity(lambda x, t: self.dit(x, timesteps(x, t), text=both), guidance_scale)
        ctx: TextContext = self.dit.prepare_context(text.cond, text.cond_mask)
        return lambda x, t: self.dit(x, timesteps(x, t), text=ctx)

    @torch.no_grad()
    def __call__(
        self,
        prompts: str | list[str],
        duration: float | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        vocoder_steps: int | None = None,
        seed: int | None = None,
        negative_prompt: str | list[str] | None = None,
        *,
        progress: bool = False,
        solver: str | None = None,
        vocoder_solver: str | None = None,
        vocoder_grid: str | None = None,
    ) -> Tensor:
        """Generate audio.

        Args:
            prompts: a caption or ``B`` captions.
            duration: seconds (latent length ``25 * duration`` frames); None: :attr:`default_duration`.
            steps: DiT sampling steps (None: ``self.sampling.steps``).
            guidance_scale: CFG scale (active iff > 1); None: :attr:`default_guidance`.
            vocoder_steps: vocoder steps; None: ``self.sampling.vocoder_steps`` or else the vocoder's
                ``default_steps`` (200 for the paper's flow-matching vocoder, ``k`` for a ``k``-step
                GAN-fine-tuned one).
            seed: seeds a private generator (DiT noise first, then vocoder noise); None uses the global RNG.
            negative_prompt: optional caption(s) for the unconditional branch.
            solver, vocoder_solver, vocoder_grid: the DiT and vocoder samplers (None: ``self.sampling``'s).

        Returns:
            ``[B, frames * 960]`` float32 waveforms at :attr:`sample_rate` (24 kHz).
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        if self.vocoder is None:
            raise SaraError("this pipeline has no vocoder; use generate_latents()")
        settings = self.sampling.updated(vocoder_solver=vocoder_solver, vocoder_grid=vocoder_grid)
        vocoder_steps = self.vocoder_steps() if vocoder_steps is None else vocoder_steps
        if isinstance(vocoder_steps, bool) or not isinstance(vocoder_steps, (int, float)) \
                or int(vocoder_steps) != vocoder_steps or vocoder_steps < 1 or vocoder_steps > MAX_STEPS:
            raise ConfigError(f"vocoder_steps must be an integer in [1, {MAX_STEPS}], got {vocoder_steps!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
            raise ConfigError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        gen = None if seed is None else torch.Generator().manual_seed(int(seed))
        latents = self.generate_latents(prompts, duration, steps, guidance_scale, generator=gen,
                                        negative_prompt=negative_prompt, progress=progress, solver=solver)
        hop = int(getattr(self.vocoder, "hop_length", 960))
        noise = torch.randn(latents.shape[0], latents.shape[-1] * hop, generator=gen).to(self.device)
        return self.vocoder.decode(latents, steps=int(vocoder_steps), noise=noise,
                                   **vocoder_sampler_kwargs(settings.vocoder_solver, settings.vocoder_grid)).float()

    def vocoder_steps(self) -> int:
        """Default vocoder steps: ``self.sampling.vocoder_steps``, else the vocoder's ``default_steps`` (200)."""
        if self.sampling.vocoder_steps is not None:
            return int(self.sampling.vocoder_steps)
        return int(getattr(getattr(self.vocoder, "config", None), "default_steps", 200))


def _text_encoder_spec(config: dict[str, Any], directory: Path) -> TextEncoderSpec:
    """The release's text-encoder spec (MiniLM when absent); CheckpointError naming the file when malformed."""
    try:
        return config_from_dict(TextEncoderSpec, config.get("text_encoder", {"kind": "minilm"}))
    except ConfigError as exc:
        raise CheckpointError(f"{directory}/config.json: text_encoder: {exc}") from None


def _check_prompts(prompts: list[str]) -> list[str]:
    if isinstance(prompts, str):
        prompts = [prompts]
    if not prompts:
        raise ConfigError("no prompts given")
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise ConfigError("empty prompt")
    return list(prompts)


def _check_sampling_args(steps: int, guidance_scale: float) -> None:
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or int(steps) != steps \
            or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be an integer in [1, {MAX_STEPS}], got {steps!r}")
    if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)) \
            or not math.isfinite(float(guidance_scale)):
        raise ConfigError(f"guidance scale must be finite, got {guidance_scale!r}")


def _pad_pair(a: Tensor, a_mask: Tensor, b: Tensor, b_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Stack two padded batches ``[B, S_a, D]``/``[B, S_b, D]`` into ``[2B, max(S), D]`` with masks."""
    rows = [s[m] for s, m in zip(a, a_mask)] + [s[m] for s, m in zip(b, b_mask)]
    return pad_states(rows)


def _progress_bar(total: int, enabled: bool):  # noqa: ANN202 - tqdm or None
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sampling", leave=False)
