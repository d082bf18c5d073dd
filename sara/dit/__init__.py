"""Latent DiT: text-conditioned flow-matching backbone over 25 Hz semantic latents."""

from sara.dit.config import DiTConfig
from sara.dit.model import LatentDiT, TextContext

__all__ = ["DiTConfig", "LatentDiT", "TextContext"]
