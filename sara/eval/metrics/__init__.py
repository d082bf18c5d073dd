"""Metric functions (numpy / torch only; no models)."""

from sara.eval.metrics.clap_score import clap_score, cosine_similarities
from sara.eval.metrics.frechet import (
    frechet_audio_distance,
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
)
from sara.eval.metrics.inception import inception_score
from sara.eval.metrics.kl import KLResult, kl_sigmoid, kl_softmax, paired_kl
from sara.eval.metrics.reconstruction import (
    DAC_MEL,
    DAC_STFT,
    MelDistanceConfig,
    STFTDistanceConfig,
    mel_distance,
    si_sdr,
    stft_distance,
    visqol,
    visqol_available,
    waveform_l1,
)

__all__ = [
    "DAC_MEL",
    "DAC_STFT",
    "KLResult",
    "MelDistanceConfig",
    "STFTDistanceConfig",
    "clap_score",
    "cosine_similarities",
    "frechet_audio_distance",
    "frechet_distance",
    "frechet_distance_from_stats",
    "gaussian_stats",
    "inception_score",
    "kl_sigmoid",
    "kl_softmax",
    "mel_distance",
    "paired_kl",
    "si_sdr",
    "stft_distance",
    "visqol",
    "visqol_available",
    "waveform_l1",
]
