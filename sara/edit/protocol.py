"""The audio-to-audio / long-form interface a text-to-audio pipeline offers.

:class:`~sara.pipelines.text_to_audio.TextToAudio` implements it through :class:`sara.edit.EditingMixin`
(semantic latents + flow-matching DiT).  A latent-diffusion pipeline can implement the same methods with
its own encoder (VAE) and sampler; callers (CLI, server) depend only on this protocol.  Every method
returns mono float32 audio ``[1, S]`` at :attr:`sample_rate` with an exact, documented length ``S``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

__all__ = ["AudioEditor"]


@runtime_checkable
class AudioEditor(Protocol):
    """Variation, inpainting, continuation, reconstruction and long-form generation."""

    @property
    def sample_rate(self) -> int:
        """Output rate in Hz."""
        ...

    def reconstruct(self, waveform: Tensor, sample_rate: int, *, seed: int | None = None) -> Tensor:
        """Encode and decode ``waveform [C, T]``: ``[1, round(T * rate / sample_rate)]``."""
        ...

    def variation(self, waveform: Tensor, sample_rate: int, prompt: str, strength: float = 0.5, *,
                  seed: int | None = None) -> Tensor:
        """Re-generate from flow time ``strength`` (0: the reconstruction, 1: plain generation)."""
        ...

    def inpaint(self, waveform: Tensor, sample_rate: int, prompt: str, start: float, end: float, *,
                seed: int | None = None) -> Tensor:
        """Regenerate seconds ``[start, end)``; the rest equals the reconstruction."""
        ...

    def extend(self, waveform: Tensor, sample_rate: int, seconds: float, prompt: str | None = None, *,
               before: bool = False, seed: int | None = None) -> Tensor:
        """Continue the clip by ``seconds`` after it (or before it)."""
        ...

    def generate(self, prompt: object, duration: float | None = None, *, seed: int | None = None) -> Tensor:
        """Any duration (long-form), a caption or a prompt schedule: exactly ``round(duration * rate)`` samples."""
        ...
