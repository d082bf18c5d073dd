"""Evaluation: the standard T2A / codec metrics computed as the community tools do, offline.

Metrics (eager, numpy/scipy/torch only)::

    frechet_distance(emb_a [N, D], emb_b [M, D]) -> float      # audioldm_eval FD recipe
    frechet_audio_distance(frames_a, frames_b) -> float        # FAD over per-frame embeddings
    paired_kl / kl_softmax / kl_sigmoid                        # KL(reference || generated)
    inception_score(logits [N, C], splits=10) -> (mean, std)
    clap_score(text [N, D], audio [N, D]) -> (mean, std)
    mel_distance / stft_distance / waveform_l1 / si_sdr / visqol   # DAC-style reconstruction

Everything else (embedders, probes, t-SNE, runners) is imported lazily on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from sara.eval.metrics import (
    DAC_MEL,
    DAC_STFT,
    KLResult,
    MelDistanceConfig,
    STFTDistanceConfig,
    clap_score,
    frechet_audio_distance,
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
    inception_score,
    kl_sigmoid,
    kl_softmax,
    mel_distance,
    paired_kl,
    si_sdr,
    stft_distance,
    visqol,
    visqol_available,
    waveform_l1,
)

_LAZY: dict[str, str] = {
    "AudioEmbedder": "sara.eval.embedders",
    "EmbedderOutput": "sara.eval.embedders",
    "build_embedder": "sara.eval.embedders",
    "ProbeConfig": "sara.eval.probes",
    "ProbeResult": "sara.eval.probes",
    "run_probe": "sara.eval.probes",
    "fold_splits": "sara.eval.probes",
    "trainvaltest_split": "sara.eval.probes",
    "plot_tsne": "sara.eval.tsne",
    "EmbeddingCache": "sara.eval.runner",
    "embed_files": "sara.eval.runner",
    "evaluate_generation": "sara.eval.runner",
    "evaluate_reconstruction": "sara.eval.runner",
    "evaluate_probe": "sara.eval.probe_runner",
    "read_manifest": "sara.eval.manifest",
}

__all__ = [
    "AudioEmbedder",
    "DAC_MEL",
    "DAC_STFT",
    "EmbedderOutput",
    "EmbeddingCache",
    "KLResult",
    "MelDistanceConfig",
    "ProbeConfig",
    "ProbeResult",
    "STFTDistanceConfig",
    "build_embedder",
    "clap_score",
    "embed_files",
    "evaluate_generation",
    "evaluate_probe",
    "evaluate_reconstruction",
    "fold_splits",
    "frechet_audio_distance",
    "frechet_distance",
    "frechet_distance_from_stats",
    "gaussian_stats",
    "inception_score",
    "kl_sigmoid",
    "kl_softmax",
    "mel_distance",
    "paired_kl",
    "plot_tsne",
    "read_manifest",
    "run_probe",
    "si_sdr",
    "stft_distance",
    "trainvaltest_split",
    "visqol",
    "visqol_available",
    "waveform_l1",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sara.eval' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
