"""Dasheng-compatible semantic encoder (latents ``[B, 768, N]`` at 25 Hz for dasheng_base).

Public API: :class:`SemanticEncoder` (``from_pretrained``, ``encode``, ``save_pretrained``) and
:class:`EncoderConfig` (presets ``base``, ``b06``, ``b12``, ``small``, ``tiny``).
"""

from sara.encoder.config import EncoderConfig
from sara.encoder.encoder import SemanticEncoder

__all__ = ["EncoderConfig", "SemanticEncoder"]
