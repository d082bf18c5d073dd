"""``sara data prepare``: manifests for existing captioned datasets (AudioCaps, Clotho, WavCaps, a
SemanticVocoder ``caption.jsonl``, a folder with a ``path,caption`` list).

One module per format family reads the caption file into :class:`~sara.data.prepare.entries.Entry` rows
(``audiocaps``, ``clotho``, ``wavcaps``, ``lists``); :mod:`~sara.data.prepare.audio` finds each clip's file
and reads its header; :func:`~sara.data.prepare.run.prepare_manifest` writes the manifest.
"""

from __future__ import annotations

from sara.data.prepare.run import FORMATS, PrepareResult, prepare_manifest

__all__ = ["FORMATS", "PrepareResult", "prepare_manifest"]
