"""The public editing and long-form API of TextToAudio (:class:`EditingMixin`).

All methods take one clip (``[T]`` or ``[C, T]`` at any rate; channels are mixed) and return mono float32
audio ``[1, S]`` at :attr:`sample_rate` (24 kHz) with an exact length ``S``.  Shared keyword arguments:

* ``steps`` / ``guidance_scale`` / ``negative_prompt`` / ``vocoder_steps``: as in ``pipe(...)``;
* ``seed``: seeds private generators (see :mod:`sara.edit.pipeline` for the order of draws);
* ``window``: seconds per DiT window (default: the model's default duration, its trained length);
  ``overlap``: seconds each window shares with the previous one (None: 1 s, at most a quarter window);
  ``blend``: seconds of that overlap that
  are partly regenerated (soft joins);
* ``callback(i, x)`` (variation, inpaint, extend): called at every DiT step of every window with the step
  index and the latents the model sees (progress reports, tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from sara.edit.audio import as_batch, splice
from sara.edit.checks import MAX_LONG_SECONDS, check_fraction, check_positive_seconds, check_region
from sara.edit.masks import ramp_into, region_mask
from sara.edit.pipeline import EditingBase, _generator
from sara.edit.prompts import PromptSchedule
from sara.edit.sampler import StepCallback
from sara.edit.settings import FRAME_RATE
from sara.edit.windows import WindowJob, plan_windows
from sara.errors import SaraError

__all__ = ["EditingMixin", "LongLatents"]

DEFAULT_OVERLAP = None  # context each window re-reads from the previous one: min(1 s, a quarter window)
DEFAULT_BLEND = 0.0  # seconds of that context partly regenerated


@dataclass
class LongLatents:
    """Latents of a (long-form) generation.

    Attributes:
        latents: ``[1, C, F]`` at 25 Hz.
        joins: frames where a window's new content meets held context (seam positions).
        spans: the DiT windows ``(start, end)`` in frames, in sampling order.
        duration: requested seconds.
        generator: the generator after the DiT draws (decode with it to reproduce :meth:`generate`).
    """

    latents: Tensor
    joins: list[int]
    spans: list[tuple[int, int]]
    duration: float
    generator: torch.Generator | None


def _prompt_schedule(prompt: object) -> PromptSchedule:
    if isinstance(prompt, PromptSchedule):
        return prompt
    if isinstance(prompt, str):
        return PromptSchedule.constant(prompt)
    if isinstance(prompt, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in prompt):
        return PromptSchedule.from_pairs([(float(t), p) for t, p in prompt])
    from sara.errors import ConfigError

    raise ConfigError("prompt must be a caption, a PromptSchedule or [(seconds, caption), ...]")


class EditingMixin(EditingBase):
    """Variation, inpainting, continuation, reconstruction and long-form generation (implements
    :class:`sara.edit.protocol.AudioEditor`)."""

    @torch.no_grad()
    def reconstruct(self, waveform: Tensor, sample_rate: int, *, seed: int | None = None,
                    vocoder_steps: int | None = None) -> Tensor:
        """Encode ``waveform`` and decode it again: ``[1, round(T * 24000 / sample_rate)]``."""
        wav = as_batch(waveform, sample_rate)
        settings = self._settings(1, None, None, vocoder_steps, None, 0.0, 0.0)
        return self._kept_audio(wav, sample_rate, "reconstruction", seed, settings.vocoder_steps)

    @torch.no_grad()
    def variation(self, waveform: Tensor, sample_rate: int, prompt: str, strength: float = 0.5, *,
                  steps: int | None = None, guidance_scale: float | None = None, seed: int | None = None,
                  negative_prompt: str | None = None, vocoder_steps: int | None = None,
                  window: float | None = None, overlap: float | None = DEFAULT_OVERLAP, blend: float = DEFAULT_BLEND,
                  progress: bool = False, callback: StepCallback | None = None) -> Tensor:
        """A variation of the clip: encode it, move it to flow time ``strength`` along fresh noise, and
        sample the rest of the way with ``prompt``.

        ``strength`` 0 returns :meth:`reconstruct` (same seed), 1 plain generation of the clip's length
        (same seed: ``pipe(prompt, duration, seed=...)`` for a clip of one window); in between
        ``ceil(steps * strength)`` steps of the schedule compressed into ``[0, strength]``.  Clips longer
        than a window are done window by window, each continuing the previous one.

        Returns:
            ``[1, round(T * 24000 / sample_rate)]``.
        """
        strength = check_fraction(strength, "strength")
        prompts = _prompt_schedule(prompt)
        wav = as_batch(waveform, sample_rate)
        settings = self._settings(steps, guidance_scale, negative_prompt, vocoder_steps, window, overlap, blend)
        length = self.output_length(wav.shape[-1], sample_rate)
        if strength == 0:
            return self._kept_audio(wav, sample_rate, "reconstruction", seed, settings.vocoder_steps)
        base = self.encode_audio(wav, sample_rate)
        frames, gen = base.shape[-1], _generator(seed)
        spans = plan_windows(0, frames, settings.window, settings.overlap, patch=self.dit.config.patch_size)
        job = WindowJob(base=base, hold=torch.zeros(frames), spans=spans, blend=settings.blend)
        latents = self._sample(job, prompts, settings, gen, strength=strength, progress=progress,
                               callback=callback).latents
        out = self.decode_latents(latents[..., :frames], generator=gen, vocoder_steps=settings.vocoder_steps)
        return out[..., :length]

    @torch.no_grad()
    def inpaint(self, waveform: Tensor, sample_rate: int, prompt: str, start: float, end: float, *,
                fade: float = 0.1, keep: str = "reconstruction", steps: int | None = None,
                guidance_scale: float | None = None, seed: int | None = None, negative_prompt: str | None = None,
                vocoder_steps: int | None = None, window: float | None = None,
                overlap: float | None = DEFAULT_OVERLAP, callback: StepCallback | None = None) -> Tensor:
        """Regenerate seconds ``[start, end)`` of the clip with ``prompt``.

        The latent frames outside the region are held to the encoded clip at every step (replace-known-
        region); ``fade`` seconds at each edge of the region fade from the original latents into the new
        ones and, in the waveform, from the kept audio into the decoded region.  Outside ``[start, end)``
        the output *is* ``keep``: :meth:`reconstruct` with the same seed, or the ``"original"`` input.
        ``callback(i, x)`` sees the latents of every window at every step (tests).

        Returns:
            ``[1, round(T * 24000 / sample_rate)]``.
        """
        prompts = _prompt_schedule(prompt)
        wav = as_batch(waveform, sample_rate)
        start, end = check_region(start, end, wav.shape[-1] / sample_rate)
        fade = check_positive_seconds(fade, "fade", 10.0) if fade else 0.0
        settings = self._settings(steps, guidance_scale, negative_prompt, vocoder_steps, window, overlap, 0.0)
        kept = self._kept_audio(wav, sample_rate, keep, seed, settings.vocoder_steps)
        base = self.encode_audio(wav, sample_rate)
        frames = base.shape[-1]
        a = min(frames - 1, math.floor(start * FRAME_RATE))
        b = max(a + 1, min(frames, math.ceil(end * FRAME_RATE)))
        hold = ramp_into(region_mask(frames, a, b), min(round(fade * FRAME_RATE), (b - a) // 2))
        spans = _inpaint_spans(a, b, frames, settings.window, settings.overlap, self.dit.config.patch_size)
        gen = _generator(seed)
        latents = self._sample(WindowJob(base, hold, spans), prompts, settings, gen, callback=callback).latents
        s0, e0 = min(s for s, _ in spans), min(frames, max(e for _, e in spans))
        piece = self.decode_latents(latents[..., s0:e0], generator=gen, vocoder_steps=settings.vocoder_steps)
        a_s, b_s = round(start * self.sample_rate), min(kept.shape[-1], round(end * self.sample_rate))
        fade_s = min(round(fade * self.sample_rate), (b_s - a_s) // 2)
        return splice(kept, piece, s0 * self.hop_length, a_s, b_s, fade_s, fade_s)

    @torch.no_grad()
    def extend(self, waveform: Tensor, sample_rate: int, seconds: float, prompt: str | None = None, *,
               before: bool = False, fade: float = 0.1, keep: str = "reconstruction", steps: int | None = None,
               guidance_scale: float | None = None, seed: int | None = None, negative_prompt: str | None = None,
               vocoder_steps: int | None = None, window: float | None = None,
               overlap: float | None = DEFAULT_OVERLAP, blend: float = DEFAULT_BLEND, progress: bool = False,
               callback: StepCallback | None = None) -> Tensor:
        """Continue the clip by ``seconds`` after its end (``before``: ahead of its start).

        The clip's latents are held while windows sample the new frames, the first one reading up to half
        a window of the clip as context.  ``prompt`` None samples unconditionally.  The output starts
        (``before``: ends) with ``keep`` -- :meth:`reconstruct` with the same seed or the ``"original"``
        input -- exactly, except its last (first) ``fade`` seconds, which cross-fade into the new audio.

        Returns:
            ``[1, round(T * 24000 / sample_rate) + round(seconds * 24000)]``.
        """
        prompts = None if prompt is None else _prompt_schedule(prompt)
        wav = as_batch(waveform, sample_rate)
        seconds = check_positive_seconds(seconds, "seconds", MAX_LONG_SECONDS)
        settings = self._settings(steps, guidance_scale, negative_prompt, vocoder_steps, window, overlap, blend)
        kept = self._kept_audio(wav, sample_rate, keep, seed, settings.vocoder_steps)
        base_in = self.encode_audio(wav, sample_rate)
        n, hop = base_in.shape[-1], self.hop_length
        new_samples = round(seconds * self.sample_rate)
        m = max(1, math.ceil((kept.shape[-1] + new_samples - n * hop) / hop) if not before
                else math.ceil(new_samples / hop))
        job, ctx = _extend_job(base_in, m, before, settings, self.dit.config.patch_size)
        gen = _generator(seed)
        latents = self._sample(job, prompts, settings, gen, progress=progress, callback=callback).latents
        s0, e0 = min(s for s, _ in job.spans), min(n + m, max(e for _, e in job.spans))
        piece = self.decode_latents(latents[..., s0:e0], generator=gen, vocoder_steps=settings.vocoder_steps)
        fade_s = min(round((fade or 0.0) * self.sample_rate), ctx * hop, kept.shape[-1])
        total = kept.shape[-1] + new_samples
        if before:
            out = torch.cat([torch.zeros(1, new_samples), kept], dim=-1)
            return splice(out, piece, s0 * hop - (m * hop - new_samples), 0, new_samples + fade_s, 0, fade_s)
        out = torch.cat([kept, torch.zeros(1, new_samples)], dim=-1)
        join = kept.shape[-1]  # <= n * hop: the clip's latents cover it
        fade_s = min(fade_s, join - s0 * hop)
        return splice(out, piece, s0 * hop, join - fade_s, total, fade_s, 0)

    @torch.no_grad()
    def generate(self, prompt: object, duration: float | None = None, *, steps: int | None = None,
                 guidance_scale: float | None = None, seed: int | None = None, negative_prompt: str | None = None,
                 vocoder_steps: int | None = None, window: float | None = None,
                 overlap: float | None = DEFAULT_OVERLAP, blend: float = DEFAULT_BLEND, end_silence: bool = True,
                 progress: bool = False) -> Tensor:
        """Generate exactly ``duration`` seconds (up to 3600) from a caption or a prompt schedule.

        Durations up to one window are one DiT pass (the same latents as ``pipe(...)`` when the frame count
        agrees).  Shorter than a window and with a semantic encoder (``end_silence``), the window's frames
        after ``duration`` are held to encoded silence, so the model -- trained on clips padded with
        silence -- makes a sound that ends in time instead of one that is cut off.  Longer durations are
        sampled window by window, each continuing the previous one (``prompt`` may change over time:
        ``[(0, "rain"), (60, "thunder storm")]``); ``overlap=0`` gives independent windows (naive
        concatenation).  The vocoder decodes in chunks of :attr:`decode_chunk_seconds`.

        Returns:
            ``[1, round(duration * 24000)]``.
        """
        result = self.generate_windows(prompt, duration, steps=steps, guidance_scale=guidance_scale, seed=seed,
                                       negative_prompt=negative_prompt, window=window, overlap=overlap,
                                       blend=blend, end_silence=end_silence, progress=progress)
        samples = round(result.duration * self.sample_rate)
        steps_v = self._settings(1, None, None, vocoder_steps, window, 0.0, 0.0).vocoder_steps
        out = self.decode_latents(result.latents, generator=result.generator, vocoder_steps=steps_v)
        return out[..., :samples]

    @torch.no_grad()
    def generate_windows(self, prompt: object, duration: float | None = None, *, steps: int | None = None,
                         guidance_scale: float | None = None, seed: int | None = None,
                         negative_prompt: str | None = None, window: float | None = None,
                         overlap: float | None = DEFAULT_OVERLAP, blend: float = DEFAULT_BLEND, end_silence: bool = True,
                         progress: bool = False) -> LongLatents:
        """The latent half of :meth:`generate`: ``LongLatents(latents [1, C, ceil(S / hop)], joins, ...)``."""
        prompts = _prompt_schedule(prompt)
        duration = self.default_duration if duration is None else duration
        duration = check_positive_seconds(duration, "duration", MAX_LONG_SECONDS)
        settings = self._settings(steps, guidance_scale, negative_prompt, None, window, overlap, blend)
        frames = max(1, math.ceil(round(duration * self.sample_rate) / self.hop_length))
        gen = _generator(seed)
        if end_silence and frames < settings.window and self._has_encoder():
            job = WindowJob(self._silence(settings.window), region_mask(settings.window, 0, frames),
                            [(0, settings.window)])
        else:
            spans = plan_windows(0, frames, settings.window, settings.overlap, patch=self.dit.config.patch_size)
            job = WindowJob(None, torch.zeros(frames), spans, blend=settings.blend)
        result = self._sample(job, prompts, settings, gen, progress=progress)
        return LongLatents(result.latents[..., :frames], result.joins, job.spans, duration, gen)

    def _has_encoder(self) -> bool:
        try:
            self._semantic_encoder()
        except SaraError:
            return False
        return True

    def _silence(self, frames: int) -> Tensor:
        """Latents ``[1, C, frames]`` of digital silence (what padded training clips end with)."""
        return self.encode_audio(torch.zeros(1, frames * self.hop_length), self.sample_rate)


def _inpaint_spans(a: int, b: int, frames: int, window: int, overlap: int, patch: int) -> list[tuple[int, int]]:
    """Windows over region ``[a, b)`` plus context on both sides (a whole window when it fits)."""
    pad = max(overlap, (window - (b - a)) // 2)
    s, e = max(0, a - pad), min(frames, b + pad)
    if e - s < window:
        s = max(0, min(s, frames - window))
        e = min(frames, s + window)
    return plan_windows(s, e, window, overlap, patch=patch)


def _extend_job(base_in: Tensor, new: int, before: bool, settings, patch: int) -> tuple[WindowJob, int]:  # noqa: ANN001
    """The timeline ``[clip | new]`` (``before``: ``[new | clip]``) with the clip held, and the context frames."""
    n, w = base_in.shape[-1], settings.window
    ctx = max(1, min(n, max(w // 2, w - new)))
    zeros = torch.zeros(1, base_in.shape[1], new)
    if before:
        base, hold = torch.cat([zeros, base_in.cpu()], -1), torch.cat([torch.zeros(new), torch.ones(n)])
        spans = plan_windows(0, new + ctx, w, settings.overlap, reverse=True, patch=patch)
    else:
        base, hold = torch.cat([base_in.cpu(), zeros], -1), torch.cat([torch.ones(n), torch.zeros(new)])
        spans = plan_windows(n - ctx, n + new, w, settings.overlap, patch=patch)
    return WindowJob(base, hold, spans, blend=settings.blend), ctx
