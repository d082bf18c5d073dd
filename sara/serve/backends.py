"""One serving interface over every system ``sara generate`` loads: defaults, model-specific checks, the
batching key and one batched forward pass.

Batching and seeds: a result depends only on its own request, never on the requests it was batched with.

* SARA (``TextToAudio``): each row draws its DiT noise and then its vocoder noise from its own seeded
  generator, exactly as ``sara generate --seed S`` does for one prompt, so a batched result equals the
  unbatched one (up to float rounding) and any seeds batch together.
* Latent diffusion (Tango / sara LDM) with a deterministic sampler: each row's initial noise comes from its
  own seed, as above.
* DDPM sampling, DC-LDM and AudioGen draw more noise inside the sampler from one generator per call, so
  only requests with the same seed (and settings) share a forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor

from sara.cli.generate import DEFAULT_DIT_STEPS
from sara.errors import ConfigError
from sara.progress import progress_hook
from sara.serve.config import Limits
from sara.serve.limits import GenerateParams, GenerateRequest, check_duration, draw_seed

__all__ = ["Backend", "make_backend"]

Progress = Callable[[float], None]  # fraction of the forward pass done, in [0, 1]


class Backend:
    """A loaded model behind the serving interface (subclasses per system).

    Args:
        pipe: the loaded pipeline (:func:`sara.pipelines.detect.load_pipeline`).
        kind: its layout (:data:`sara.pipelines.detect.MODEL_KINDS`).
    """

    system = "generic"
    per_row_seeds = False  # True: requests with different seeds may share a forward pass

    def __init__(self, pipe: Any, kind: str) -> None:
        self.pipe, self.kind = pipe, kind

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz."""
        return int(self.pipe.sample_rate)

    def defaults(self) -> dict[str, Any]:
        """The model's defaults: ``duration`` (s), ``steps``, ``guidance``, ``vocoder_steps``."""
        raise NotImplementedError

    def unsupported(self, req: GenerateRequest) -> str | None:
        """The first option of ``req`` this system does not read, or None."""
        return None

    def check(self, params: GenerateParams) -> None:
        """Model-specific limits (e.g. the model's maximum duration); ConfigError."""

    def resolve(self, req: GenerateRequest, model: str, limits: Limits) -> GenerateParams:
        """``req`` with the model's defaults filled in (capped to ``limits``) and checked against the model."""
        bad = self.unsupported(req)
        if bad is not None:
            raise ConfigError(f"{bad} does not apply to {self.system} models")
        d = self.defaults()
        duration = req.duration if req.duration is not None else min(float(d["duration"]), limits.max_duration)
        check_duration("duration", duration, limits)
        steps = req.steps if req.steps is not None else _cap(d["steps"], limits.max_steps)
        vocoder_steps = req.vocoder_steps if req.vocoder_steps is not None else _cap(d["vocoder_steps"],
                                                                                      limits.max_steps)
        params = GenerateParams(model=model, prompt=req.prompt, negative_prompt=req.negative_prompt,
                                duration=float(duration), steps=steps,
                                guidance=float(req.guidance if req.guidance is not None else d["guidance"]),
                                vocoder_steps=vocoder_steps, seed=req.seed if req.seed is not None else draw_seed(),
                                format=req.format)
        self.check(params)
        return params

    def batch_key(self, p: GenerateParams) -> Hashable:
        """Requests with equal keys run in one forward pass."""
        seed = None if self.per_row_seeds else p.seed
        return (p.duration, p.steps, p.guidance, p.vocoder_steps, p.negative_prompt is None, seed)

    def generate(self, batch: list[GenerateParams], progress: Progress) -> list[Tensor]:
        """One forward pass for ``batch`` (equal :meth:`batch_key`): ``[N]`` float waveforms, one per request."""
        raise NotImplementedError

    def reconstructor(self) -> Any:
        """An object with ``reconstruct(wav [1, C, T], sample_rate, steps, seed) -> [1, T']`` and
        ``sample_rate`` (as ``sara eval reconstruction`` uses)."""
        raise NotImplementedError

    def editor(self) -> Any:
        """The pipeline's :class:`~sara.edit.protocol.AudioEditor` (edit / inpaint / extend); ConfigError
        for systems without one."""
        raise ConfigError(f"{self.system} models cannot edit audio: edit, inpaint and extend need a SARA "
                          "(semantic-latent) model with a semantic encoder")

    def edit(self, params: Any, progress: Progress) -> Tensor:
        """Run one :class:`~sara.serve.edits.EditParams` job: mono ``[S]`` at :attr:`sample_rate`."""
        from sara.serve.edits import run_edit

        return run_edit(self.editor(), params, progress)


def _cap(value: int | None, high: int) -> int | None:
    return None if value is None else min(int(value), high)


def phased(progress: Progress, phases: tuple[str, ...]) -> Callable[[str, int, int], None]:
    """A :func:`sara.progress.progress_hook` that maps ``done / total`` of each of ``phases`` (run in that
    order) onto equal shares of ``[0, 0.9]`` of ``progress`` (decoding is the rest)."""

    def hook(phase: str, done: int, total: int) -> None:
        k = phases.index(phase) if phase in phases else len(phases) - 1
        progress(0.9 * (k + min(1.0, done / max(total, 1))) / len(phases))

    return hook


def _row_noise(gens: list[torch.Generator], shape: tuple[int, ...]) -> Tensor:
    """``[B, *shape]`` noise, row ``i`` drawn from ``gens[i]`` (the shape of one unbatched call)."""
    return torch.cat([torch.randn((1, *shape), generator=g) for g in gens])


class SaraBackend(Backend):
    """``TextToAudio``: the DiT flow sampler then the SemanticVocoder; progress per DiT step."""

    system = "SARA"
    per_row_seeds = True

    def defaults(self) -> dict[str, Any]:
        sampling = getattr(self.pipe, "sampling", None)
        steps = DEFAULT_DIT_STEPS if sampling is None else sampling.steps
        vocoder_steps = self.pipe.vocoder_steps() if getattr(self.pipe, "vocoder", None) is not None else None
        return {"duration": self.pipe.default_duration, "steps": steps, "guidance": self.pipe.default_guidance,
                "vocoder_steps": vocoder_steps}

    def check(self, params: GenerateParams) -> None:
        if self.pipe.vocoder is None:
            raise ConfigError("this SARA model has no vocoder, so it cannot make audio")
        self.pipe.num_frames(params.duration)  # ConfigError beyond the model's maximum duration

    def generate(self, batch: list[GenerateParams], progress: Progress) -> list[Tensor]:
        from sara.flow.solvers import sample
        from sara.flow.timesteps import make_schedule
        from sara.pipelines.sampling import vocoder_sampler_kwargs

        pipe, first = self.pipe, batch[0]
        frames = pipe.num_frames(first.duration)
        gens = [torch.Generator().manual_seed(p.seed) for p in batch]
        with torch.inference_mode():
            x = pipe.dit.drop_unseen(_row_noise(gens, (pipe.dit.config.latent_dim, frames)).to(pipe.device))
            guided = first.guidance > 1
            negatives = [p.negative_prompt for p in batch] if guided and first.negative_prompt else None
            text = pipe.encode_text([p.prompt for p in batch], negatives)
            # the pipeline's own guided velocity (TextToAudio.generate_latents draws its noise from one
            # generator for the whole batch, so the sampling loop is repeated here with per-row noise)
            sampling = pipe.sampling
            velocity = pipe._velocity(text, first.guidance, continuous_t=sampling.solver != "euler")
            sched = make_schedule("sway", int(first.steps))
            total = len(sched.timesteps)
            latents = sample(velocity, x, sched, sampling.solver, skip_noop=True,  # type: ignore[arg-type]
                             callback=lambda i: progress(0.9 * (i + 1) / total))
            hop = int(getattr(pipe.vocoder, "hop_length", 960))
            noise = _row_noise(gens, (latents.shape[-1] * hop,)).to(pipe.device)
            wav = pipe.vocoder.decode(latents, steps=int(first.vocoder_steps), noise=noise,
                                      **vocoder_sampler_kwargs(sampling.vocoder_solver, sampling.vocoder_grid)).float()
        keep = round(first.duration * self.sample_rate)
        return [row[:keep].cpu() for row in wav]

    def reconstructor(self) -> Any:
        voc = self.pipe.vocoder
        voc.get_encoder()  # CheckpointError (one line) when the release has no semantic encoder
        return voc

    def editor(self) -> Any:
        from sara.errors import CheckpointError

        if self.pipe.vocoder is None or not self.pipe._has_encoder():
            raise CheckpointError("this SARA model has no semantic encoder or vocoder, so it cannot edit audio")
        return self.pipe


class LatentDiffusionBackend(Backend):
    """Tango / sara LDM / DC-LDM: UNet sampler, VAE and HiFi-GAN at 16 kHz."""

    system = "latent-diffusion"

    def __init__(self, pipe: Any, kind: str) -> None:
        super().__init__(pipe, kind)
        # per-row initial noise for plain LatentDiffusion with a deterministic sampler (see the module doc)
        self.per_row_seeds = kind in ("tango", "sara-ldm") and pipe.defaults.sampler != "ddpm"

    def defaults(self) -> dict[str, Any]:
        d = self.pipe.defaults
        return {"duration": d.duration, "steps": d.steps, "guidance": d.guidance_scale, "vocoder_steps": None}

    def unsupported(self, req: GenerateRequest) -> str | None:
        if req.vocoder_steps is not None:
            return "vocoder_steps"
        return "negative_prompt" if req.negative_prompt is not None else None

    def check(self, params: GenerateParams) -> None:
        self.pipe.num_frames(params.duration)

    def generate(self, batch: list[GenerateParams], progress: Progress) -> list[Tensor]:
        pipe, first = self.pipe, batch[0]
        prompts = [p.prompt for p in batch]
        phases = ("tokens", "diffusion") if self.kind == "sara-dcldm" else ("diffusion",)
        with torch.inference_mode(), progress_hook(phased(progress, phases)):
            if self.per_row_seeds:
                shape = pipe.latent_shape(1, pipe.num_frames(first.duration))[1:]
                latents = _row_noise([torch.Generator().manual_seed(p.seed) for p in batch], shape)
                wav = pipe(prompts, duration=first.duration, steps=first.steps, guidance_scale=first.guidance,
                           latents=latents.to(pipe.device))
            else:
                wav = pipe(prompts, duration=first.duration, steps=first.steps, guidance_scale=first.guidance,
                           seed=first.seed)
        return [row.float().cpu() for row in wav]

    def reconstructor(self) -> Any:
        from sara.eval.mel_reconstruction import MelReconstructor

        return MelReconstructor(self.pipe)


class AudioGenBackend(Backend):
    """AudioGen: a token language model and the EnCodec decoder (no sampling steps)."""

    system = "AudioGen"
    default_duration = 10.0  # seconds, audiocraft's default

    def defaults(self) -> dict[str, Any]:
        return {"duration": self.default_duration, "steps": None, "guidance": self.pipe.config.cfg_coef,
                "vocoder_steps": None}

    def unsupported(self, req: GenerateRequest) -> str | None:
        for name in ("steps", "vocoder_steps", "negative_prompt"):
            if getattr(req, name) is not None:
                return name
        return None

    def generate(self, batch: list[GenerateParams], progress: Progress) -> list[Tensor]:
        first = batch[0]
        with torch.inference_mode(), progress_hook(phased(progress, ("tokens",))):
            wav = self.pipe([p.prompt for p in batch], duration=first.duration, cfg_coef=first.guidance,
                            seed=first.seed)
        return [row.float().cpu() for row in wav]

    def reconstructor(self) -> Any:
        from sara.eval.codec_reconstruction import CodecReconstructor

        return CodecReconstructor(self.pipe.codec)


def make_backend(pipe: Any, kind: str) -> Backend:
    """The backend for a pipeline loaded from a directory of layout ``kind``."""
    if kind in ("sara-t2a", "sara-official"):
        return SaraBackend(pipe, kind)
    if kind in ("tango", "sara-ldm", "sara-dcldm"):
        return LatentDiffusionBackend(pipe, kind)
    if kind in ("audiogen", "sara-audiogen"):
        return AudioGenBackend(pipe, kind)
    raise ConfigError(f"no serving backend for {kind!r} models")
