"""``EditingBase``: the shared machinery behind TextToAudio's editing and long-form methods.

The host class (:class:`~sara.pipelines.text_to_audio.TextToAudio`) provides ``dit``, ``vocoder``,
``encoder``, ``encode_text``, ``_velocity``, ``num_frames``, ``default_duration``, ``default_guidance``,
``sampling`` (its :class:`~sara.pipelines.sampling.SamplerSettings`), ``vocoder_steps()``, ``sample_rate`` and
``device``.  The public methods live in :mod:`sara.edit.methods`.

Random numbers (``seed`` seeds private generators, so results are reproducible):

* one generator draws, in order, each DiT window's noise ``[1, C, W]`` (only when something is sampled),
  then the vocoder noise of what is decoded -- for one window exactly the order of ``pipe(...)``, so a
  full-strength variation equals plain generation;
* the kept part of inpainting / continuation is the reconstruction with a *second* generator of the same
  seed, exactly what :meth:`reconstruct` returns.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import Tensor

from sara.edit.audio import as_batch, decode_chunked, original_at
from sara.edit.prompts import PromptSchedule
from sara.edit.sampler import StepCallback, partial_schedule
from sara.edit.settings import FRAME_RATE, EditSettings, check_window, seconds_to_frames
from sara.edit.windows import WindowJob, WindowResult, sample_windows
from sara.errors import CheckpointError, ConfigError, SaraError
from sara.flow.sampling import VelocityFn

__all__ = ["EditingBase"]

LONG_ENCODE_SECONDS = 60.0  # encode longer inputs block-wise (bounded memory)


class EditingBase:
    """Encode / decode / window-sampling helpers; see :mod:`sara.edit.methods` for the public API."""

    decode_chunk_seconds: float = 10.0  # vocoder chunk length for decoding (bounded memory)
    decode_overlap_seconds: float = 1.0  # cross-fade between vocoder chunks

    # ------------------------------------------------------------------------------ settings
    def _settings(self, steps: int | None, guidance_scale: float | None, negative_prompt: str | None,
                  vocoder_steps: int | None, window: float | None, overlap: float | None,
                  blend: float) -> EditSettings:
        """Check and resolve the common sampling arguments (ConfigError on bad values); steps, solvers and
        the vocoder grid default to the pipeline's ``sampling``."""
        from sara.pipelines.text_to_audio import _check_sampling_args

        sampling = self.sampling
        steps = sampling.steps if steps is None else steps
        guidance = self.default_guidance if guidance_scale is None else guidance_scale
        _check_sampling_args(steps, guidance)
        if negative_prompt is not None and (not isinstance(negative_prompt, str) or not negative_prompt.strip()):
            raise ConfigError("the negative prompt is empty")
        if self.vocoder is None:
            raise SaraError("this pipeline has no vocoder")
        if vocoder_steps is None:
            vocoder_steps = self.vocoder_steps()
        from sara.vocoder.vocoder import check_steps

        frames = self.num_frames(self.default_duration if window is None else window)
        ov = min(round(FRAME_RATE), frames // 4) if overlap is None else seconds_to_frames(overlap, "overlap")
        bl = seconds_to_frames(blend, "blend")
        check_window(frames, ov, bl)
        return EditSettings(steps=int(steps), guidance_scale=float(guidance), negative_prompt=negative_prompt,
                            vocoder_steps=check_steps(vocoder_steps), window=frames, overlap=ov, blend=bl,
                            solver=sampling.solver, vocoder_solver=sampling.vocoder_solver,
                            vocoder_grid=sampling.vocoder_grid)

    @property
    def hop_length(self) -> int:
        """Output samples per latent frame (960 at 24 kHz)."""
        return int(getattr(self.vocoder, "hop_length", 960))

    def output_length(self, num_samples: int, sample_rate: int) -> int:
        """Samples at :attr:`sample_rate` of a clip of ``num_samples`` at ``sample_rate`` Hz."""
        return round(num_samples * self.sample_rate / sample_rate)

    # ------------------------------------------------------------------------------ encode / decode
    def _semantic_encoder(self):  # noqa: ANN202 - a SemanticEncoder
        encoder = self.encoder
        if encoder is None and hasattr(self.vocoder, "get_encoder"):
            encoder = self.vocoder.get_encoder()
        if encoder is None:
            raise CheckpointError("this pipeline has no semantic encoder (audio input needs one)")
        if int(encoder.latent_dim) != self.dit.config.latent_dim:
            raise CheckpointError(f"encoder latents ({encoder.latent_dim}-d) do not fit the DiT "
                                  f"({self.dit.config.latent_dim}-d)")
        return encoder

    @torch.no_grad()
    def encode_audio(self, waveform: Tensor, sample_rate: int) -> Tensor:
        """Audio -> semantic latents covering the whole clip.

        Args:
            waveform: ``[T]``, ``[C, T]`` or ``[1, C, T]`` at ``sample_rate`` Hz (channels are mixed).
            sample_rate: Hz.

        Returns:
            ``[1, C, F]`` latents at 25 Hz with ``F = ceil(S / hop)`` for the ``S`` output samples of the
            clip (a zero tail is appended before encoding when the encoder's frame count falls short).
        """
        wav = as_batch(waveform, sample_rate)
        frames = math.ceil(self.output_length(wav.shape[-1], sample_rate) / self.hop_length)
        latents = self._encode(wav, sample_rate)
        if latents.shape[-1] < frames:
            pad = math.ceil((frames - latents.shape[-1] + 1) * sample_rate / FRAME_RATE)
            latents = self._encode(torch.nn.functional.pad(wav, (0, pad)), sample_rate)
        return latents[..., :frames].float()

    def _encode(self, wav: Tensor, sample_rate: int) -> Tensor:
        """``[1, C, T]`` -> ``[1, D, N]`` with the semantic encoder (block-wise for long inputs)."""
        encoder = self._semantic_encoder()
        wav = wav.to(self.device)
        if wav.shape[-1] > LONG_ENCODE_SECONDS * sample_rate and hasattr(encoder, "encode_long"):
            return encoder.encode_long(wav[0], sample_rate)[None].to(self.device)
        return encoder.encode(wav, sample_rate).to(self.device)

    @torch.no_grad()
    def decode_latents(self, latents: Tensor, *, generator: torch.Generator | None = None,
                       vocoder_steps: int | None = None) -> Tensor:
        """Latents ``[1, C, F]`` -> waveform ``[1, F * hop]``, in vocoder chunks of
        :attr:`decode_chunk_seconds` (noise ``[1, F * hop]`` drawn from ``generator`` first)."""
        if self.vocoder is None:
            raise SaraError("this pipeline has no vocoder")
        from sara.pipelines.sampling import vocoder_sampler_kwargs

        steps = vocoder_steps or self.vocoder_steps()
        noise = torch.randn(latents.shape[0], latents.shape[-1] * self.hop_length, generator=generator)
        chunk = max(2, round(self.decode_chunk_seconds * FRAME_RATE))
        overlap = min(chunk - 1, round(self.decode_overlap_seconds * FRAME_RATE))
        sampler = vocoder_sampler_kwargs(self.sampling.vocoder_solver, self.sampling.vocoder_grid)
        return decode_chunked(self.vocoder, latents.to(self.device), noise.to(self.device), steps,
                              chunk=chunk, overlap=overlap, sampler=sampler).cpu()

    def _kept_audio(self, wav: Tensor, sample_rate: int, keep: str, seed: int | None,
                    vocoder_steps: int) -> Tensor:
        """The part an edit keeps: :meth:`reconstruct` (``"reconstruction"``) or the input itself
        (``"original"``, mono, resampled), ``[1, S]``."""
        length = self.output_length(wav.shape[-1], sample_rate)
        if keep == "original":
            return original_at(wav, sample_rate, self.sample_rate, length)
        if keep != "reconstruction":
            raise ConfigError(f"keep must be 'reconstruction' or 'original', got {keep!r}")
        latents = self.encode_audio(wav, sample_rate)
        out = self.decode_latents(latents, generator=_generator(seed), vocoder_steps=vocoder_steps)
        return out[..., :length]

    # ------------------------------------------------------------------------------ sampling
    def _velocity_for(self, prompts: PromptSchedule | None, settings: EditSettings) -> Callable[[int], VelocityFn]:
        """A window's first generated frame -> the velocity of the prompt in force then (cached)."""
        cache: dict[str | None, VelocityFn] = {}

        def velocity_for(frame: int) -> VelocityFn:
            prompt = None if prompts is None else prompts.at(frame / FRAME_RATE)
            if prompt not in cache:
                cache[prompt] = self._prompt_velocity(prompt, settings)
            return cache[prompt]

        return velocity_for

    def _prompt_velocity(self, prompt: str | None, settings: EditSettings) -> VelocityFn:
        """Guided velocity for ``prompt``; None: the unconditional branch alone (zero text, no CFG)."""
        if prompt is None:
            text = self.encode_text(["sound"])
            text = dataclasses.replace(text, cond=torch.zeros_like(text.cond))
            return self._velocity(text, 1.0, continuous_t=settings.solver != "euler")
        g = settings.guidance_scale
        text = self.encode_text([prompt], settings.negative_prompt if g > 1 else None)
        return self._velocity(text, g, continuous_t=settings.solver != "euler")

    @torch.no_grad()
    def _sample(self, job: WindowJob, prompts: PromptSchedule | None, settings: EditSettings,
                generator: torch.Generator | None, *, strength: float = 1.0,
                callback: StepCallback | None = None, progress: bool = False) -> WindowResult:
        """Run :func:`sara.edit.windows.sample_windows` with this pipeline's DiT (noise from ``generator``)."""
        schedule = partial_schedule(settings.schedule, settings.steps, strength)
        if schedule is None:
            raise ValueError("nothing to sample at strength 0")
        channels, device = self.dit.config.latent_dim, self.device
        bar = _progress_bar(len(job.spans), progress)

        def noise_fn(frames: int) -> Tensor:
            noise = torch.randn(1, channels, frames, generator=generator, device="cpu").to(device)
            if bar is not None:
                bar.update(1)
            return self.dit.drop_unseen(noise)

        try:
            return sample_windows(job, schedule, self._velocity_for(prompts, settings), noise_fn,
                                  channels=channels, callback=callback, solver=settings.solver)
        finally:
            if bar is not None:
                bar.close()


def _generator(seed: int | None) -> torch.Generator | None:
    from sara.edit.checks import check_seed

    seed = check_seed(seed)
    return None if seed is None else torch.Generator().manual_seed(seed)


def _progress_bar(total: int, enabled: bool):  # noqa: ANN202 - tqdm or None
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="windows", leave=False)
