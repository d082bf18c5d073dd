"""Audio-to-audio and long-form generation in the semantic latent space.

Algorithms operate on latents ``[1, C, T]`` at 25 Hz and a velocity function (the DiT): partial-strength
starts and held frames (:mod:`sara.edit.sampler`), soft masks (:mod:`sara.edit.masks`), windowed sampling
(:mod:`sara.edit.windows`), chunked decoding and splicing (:mod:`sara.edit.audio`), prompt schedules
(:mod:`sara.edit.prompts`) and seam statistics (:mod:`sara.edit.seams`).  :class:`EditingMixin` gives
``TextToAudio`` the user-facing methods; :class:`AudioEditor` is the protocol other pipelines can implement.
"""

from sara.edit.checks import MAX_LONG_SECONDS
from sara.edit.methods import EditingMixin
from sara.edit.prompts import PromptSchedule
from sara.edit.protocol import AudioEditor
from sara.edit.seams import SeamStats, latent_steps, seam_stats, spectral_flux

__all__ = ["MAX_LONG_SECONDS", "AudioEditor", "EditingMixin", "PromptSchedule", "SeamStats", "latent_steps",
           "seam_stats", "spectral_flux"]
