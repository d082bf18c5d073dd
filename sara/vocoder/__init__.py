"""SemanticVocoder: a flow-matching waveform generator conditioned on semantic latents.

Public API: :class:`SemanticVocoder` (``from_pretrained``, ``decode``, ``reconstruct``) and
:class:`VocoderConfig` (presets ``paper``, ``small``, ``tiny``).
"""

from sara.vocoder.config import VocoderConfig
from sara.vocoder.vocoder import SemanticVocoder

__all__ = ["SemanticVocoder", "VocoderConfig"]
