"""End-to-end pipelines, one per system, side by side.

- :class:`TextToAudio` (SemanticVocoder / SARA): text -> semantic latents (DiT, flow matching) -> 24 kHz waveform.
"""

from __future__ import annotations

from sara.pipelines.text_to_audio import TextToAudio

__all__ = ["TextToAudio"]
