"""The 16 kHz mel-spectrogram world of Tango / AudioLDM: front end, mel VAE, HiFi-GAN vocoder.

Data flow (latent-diffusion system): waveform -> :mod:`sara.mel.frontend` log-mel ``[B, T, 64]`` ->
:class:`MelVAE` latents ``[B, 8, T/4, 16]`` -> (diffusion in :mod:`sara.ldm`) -> :class:`MelVAE` decode ->
:class:`HiFiGAN` -> 16 kHz waveform.  Names are imported lazily so ``import sara.mel`` stays cheap.
"""

from __future__ import annotations

from sara._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "MelConfig": "sara.mel.frontend",
    "MelFrontend": "sara.mel.frontend",
    "log_mel": "sara.mel.frontend",
    "tango_log_mel": "sara.mel.frontend",
    "prepare_waveform": "sara.mel.frontend",
    "slaney_mel_filterbank": "sara.mel.frontend",
    "MelVAE": "sara.mel.vae",
    "MelVAEConfig": "sara.mel.vae",
    "MelPosterior": "sara.mel.vae",
    "load_tango_vae_state": "sara.mel.vae",
    "HiFiGAN": "sara.mel.hifigan",
    "HiFiGANConfig": "sara.mel.hifigan",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
