"""AudioGen: an autoregressive transformer over EnCodec tokens (delay pattern, T5 cross-attention, CFG),
audiocraft-compatible.  Names are imported lazily so ``import sara.audiogen`` stays cheap.

Usage::

    from sara.audiogen import AudioGen

    ag = AudioGen.from_pretrained("audiogen-medium/")  # state_dict.bin + compression_state_dict.bin (+ t5-large)
    wav = ag(["a dog barking"], duration=5.0, seed=0)              # [1, 80000] at 16 kHz
    codes = ag.generate_tokens(["rain on a roof"], frames=250, top_k=250, cfg_coef=3.0, seed=0)  # [1, 4, 250]
    logits = ag.token_logits(codes, ["rain on a roof"])          # [1, 4, 250, 2048], NaN where undefined
    enc = ag.acoustic_encoding(codes=codes)                       # enc.latent [1, 250, 128] = E_t2a

Training: ``sara train audiogen`` (:mod:`sara.audiogen.training`, :mod:`sara.cli.train_audiogen`).
"""

from __future__ import annotations

from sara._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "AudioGen": "sara.audiogen.model",
    "AcousticEncoding": "sara.audiogen.model",
    "LMConfig": "sara.audiogen.config",
    "TokenLM": "sara.audiogen.lm",
    "SamplingConfig": "sara.audiogen.generation",
    "generate_codes": "sara.audiogen.generation",
    "TextConditioner": "sara.audiogen.conditioning",
    "build_delay_sequence": "sara.audiogen.patterns",
    "revert_delay_sequence": "sara.audiogen.patterns",
    "revert_delay_logits": "sara.audiogen.patterns",
    "load_audiocraft_lm": "sara.audiogen.official",
    "AudioGenTask": "sara.audiogen.training",
    "AudioGenTrainConfig": "sara.audiogen.training",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
