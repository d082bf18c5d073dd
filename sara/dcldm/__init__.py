"""DC-LDM: the dual-conditioned latent diffusion model (Tango UNet + AudioGen acoustic encodings).

Data flow: prompts -> text states (FLAN-T5 / MiniLM) and prompts -> AudioGen LM -> tokens -> acoustic
encoding (E_t2a ``[B, F, 128]`` at 50 Hz, or E'_t2a through the mel VAE) -> :class:`DualConditionUNet`
(extra cross-attention at ``down1`` / ``mid`` / ``up1``) sampled with Eq. 8 guidance -> mel VAE -> HiFi-GAN.
Names are imported lazily so ``import sara.dcldm`` does not import diffusers.

Usage::

    from sara.dcldm import DCLDM, DualConditionUNet

    pipe = DCLDM.from_pretrained("releases/dcldm")                 # a DCLDM release (sara train dcldm --export)
    wav = pipe(["a dog barking"], duration=5.0, seed=0)            # [1, 80000] at 16 kHz, w = 4, 200 DDPM steps
    states, mask = pipe.acoustic_encoding(["a dog barking"], 5.0)   # E_t2a [1, F, 128] + mask [1, F]
    style = pipe.acoustic_from_audio(reference_wav, 44100)          # acoustics of a reference clip instead
    wav = pipe(["a dog barking"], duration=5.0, acoustic=style)

    fresh = DCLDM.from_latent_diffusion(LatentDiffusion.from_pretrained("tango/"), audiogen, ("down1", "up1"))
"""

from __future__ import annotations

from sara._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "DualConditionUNet": "sara.dcldm.unet",
    "PLACEMENTS": "sara.dcldm.unet",
    "count_added_parameters": "sara.dcldm.unet",
    "AcousticConfig": "sara.dcldm.acoustic",
    "AcousticEncoder": "sara.dcldm.acoustic",
    "null_acoustic": "sara.dcldm.acoustic",
    "sinusoidal_positions": "sara.dcldm.acoustic",
    "DCLDM": "sara.dcldm.pipeline",
    "DCLDMTask": "sara.dcldm.training",
    "DCLDMTrainConfig": "sara.dcldm.training",
    "build_lm_token_cache": "sara.dcldm.tokens",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
