"""The open captioned corpus: allowed Debian/PyPI audio + offline synthesizers -> 24 kHz clips + manifest.

Entry points: :func:`build_corpus` (``sara data build-corpus DIR``) and :func:`describe_corpus`
(``sara data describe MANIFEST``). Heavy modules are imported lazily.
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
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
