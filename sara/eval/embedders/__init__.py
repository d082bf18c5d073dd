"""Evaluation embedders behind one interface (:class:`AudioEmbedder`), and a factory from CLI specs.

Spec strings (``--embedder``): ``mel``, ``classifier:DIR``, ``semantic:DIR``, ``cnn14:FILE.pth``,
``vggish:FILE.pth``, ``clap:DIR``.  Every path is local; nothing is downloaded.
"""

from __future__ import annotations

from sara.errors import ConfigError
from sara.eval.embedders.base import AudioEmbedder, EmbedderOutput, prepare_mono

__all__ = ["EMBEDDER_KINDS", "AudioEmbedder", "EmbedderOutput", "build_embedder", "prepare_mono"]

EMBEDDER_KINDS = ("mel", "classifier", "semantic", "cnn14", "vggish", "clap")


def build_embedder(spec: str) -> AudioEmbedder:
    """Build an embedder from ``KIND`` or ``KIND:PATH``.

    Raises:
        ConfigError: unknown kind or a missing path (a bad ``--embedder`` argument).
    """
    kind, _, path = spec.partition(":")
    if kind not in EMBEDDER_KINDS:
        raise ConfigError(f"unknown embedder {kind!r} (choose from {', '.join(EMBEDDER_KINDS)})")
    if kind == "mel":
        from sara.eval.embedders.mel import MelEmbedder

        return MelEmbedder()
    if not path:
        raise ConfigError(f"embedder {kind!r} needs a local path: {kind}:PATH")
    if kind == "classifier":
        from sara.eval.embedders.classifier import ClassifierEmbedder

        return ClassifierEmbedder.from_pretrained(path)
    if kind == "semantic":
        from sara.eval.embedders.semantic import SemanticEmbedder

        return SemanticEmbedder.from_pretrained(path)
    if kind == "cnn14":
        from sara.eval.embedders.cnn14 import Cnn14Embedder

        return Cnn14Embedder.from_checkpoint(path)
    if kind == "vggish":
        from sara.eval.embedders.vggish import VGGishEmbedder

        return VGGishEmbedder.from_checkpoint(path)
    from sara.eval.embedders.clap import ClapEmbedder

    return ClapEmbedder(path)
