"""sara: text-to-audio generation (SemanticVocoder / SARA in a semantic latent space; Tango-style latent diffusion; AudioGen).

The public API is re-exported lazily here so that ``import sara`` stays cheap and has no side effects
(no device selection, no model loading, no argv parsing).
"""

from __future__ import annotations

from sara._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_EXPORTS: dict[str, str] = {
    "SaraError": "sara.errors",
    "load_audio": "sara.audio.io",
    "save_audio": "sara.audio.io",
    "resample": "sara.audio.dsp",
    "build_corpus": "sara.data.build",
    "CorpusConfig": "sara.data.build",
    "SemanticEncoder": "sara.encoder",
    "EncoderConfig": "sara.encoder",
    "SemanticVocoder": "sara.vocoder",
    "VocoderConfig": "sara.vocoder",
    "LatentDiT": "sara.dit",
    "DiTConfig": "sara.dit",
    "TextToAudio": "sara.pipelines.text_to_audio",
    "MelVAE": "sara.mel.vae",
    "HiFiGAN": "sara.mel.hifigan",
    "LatentDiffusion": "sara.pipelines.latent_diffusion",
    "EncodecCodec": "sara.codec.model",
    "AudioGen": "sara.audiogen.model",
    "DCLDM": "sara.dcldm.pipeline",
    "DualConditionUNet": "sara.dcldm.unet",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
