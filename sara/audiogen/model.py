"""AudioGen in sara: text -> codec tokens (the token LM) -> 16 kHz audio (the EnCodec codec).

``AudioGen.from_pretrained(path)`` reads either

* an **audiocraft directory** (the facebook/audiogen-medium snapshot): ``state_dict.bin`` (the LM, see
  :mod:`sara.audiogen.official`) + ``compression_state_dict.bin`` (EnCodec, read by ``sara.codec``); the T5
  named in the LM config (t5-large) comes from a local directory or the Hugging Face cache, or
  ``text_encoder=``;
* a **sara release**: ``config.json`` (``{"class": "AudioGen", "config": {"lm": ..., "text_encoder": ...},
  "codec": "codec" | null}``) + ``model.safetensors`` (LM weights, audiocraft names) + ``codec/`` (a codec
  release or audiocraft compression file).  A release without a codec generates tokens but not audio.

Shapes: ``B`` prompts, ``K`` codebooks, ``F`` frames (50 Hz), ``V`` codebook size, ``N`` samples.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from sara.audiogen.conditioning import (
    TextConditioner,
    build_text_conditioner,
    load_t5_conditioner,
    resolve_t5,
)
from sara.audiogen.config import LMConfig
from sara.audiogen.generation import SamplingConfig, generate_extended
from sara.audiogen.lm import TokenLM
from sara.audiogen.official import CODEC_FILE, is_audiocraft_dir, load_audiocraft_lm
from sara.errors import CheckpointError, ConfigError, SaraError
from sara.runtime.inference import InferenceOptions
from sara.serialization import (
    config_from_dict,
    config_to_dict,
    load_release,
    load_state_dict_strict,
    save_release,
)
from sara.text.factory import TextEncoderSpec

__all__ = ["AcousticEncoding", "AudioGen", "TokenCodec", "load_codec", "save_audiogen_release"]

CODEC_DIR = "codec"


class TokenCodec(Protocol):
    """What AudioGen needs of a codec (``sara.codec.EncodecCodec``)."""

    sample_rate: int
    frame_rate: int | float

    def encode(self, wav: Tensor) -> Tensor:
        """``[B, 1, T]`` waveform -> ``[B, K, F]`` codes."""

    def decode(self, codes: Tensor) -> Tensor:
        """``[B, K, F]`` codes -> ``[B, 1, F * hop]`` waveform."""

    def decode_latent(self, codes: Tensor) -> Tensor:
        """``[B, K, F]`` codes -> ``[B, D, F]`` dequantised latent (sum of the codebook vectors)."""


@dataclass
class AcousticEncoding:
    """AudioGen's view of a clip, for DC-LDM's acoustic condition.

    Attributes:
        tokens: ``[B, K, F]`` codec codes.
        latent: ``[B, F, D]`` E_t2a: the codec's dequantised latent (sum of the K codebook vectors), frames first.
        frame_rate: frames per second of ``tokens`` and ``latent`` (50).
        audio: ``[B, N]`` decoded waveforms when requested, else None.
        sample_rate: Hz of ``audio``.
    """

    tokens: Tensor
    latent: Tensor
    frame_rate: float
    audio: Tensor | None
    sample_rate: int


class AudioGen(nn.Module, InferenceOptions):
    """Text-to-audio with the AudioGen token LM.

    Args:
        lm: the token LM.
        text: the frozen text conditioner (its width must be ``lm.config.text_dim``).
        codec: the codec the tokens belong to (None: tokens only).
        text_spec: how to rebuild ``text`` when saving (recorded in the release).
    """

    def __init__(self, lm: TokenLM, text: TextConditioner, codec: TokenCodec | None = None,
                 text_spec: TextEncoderSpec | None = None) -> None:
        super().__init__()
        if text.dim != lm.config.text_dim:
            raise ConfigError(f"text encoder width {text.dim} != the LM's text_dim {lm.config.text_dim}")
        _check_codec(codec, lm.config)
        self.lm = lm.eval()
        self.text = text
        self._codec = codec  # an nn.Module codec is registered as a submodule, so .to() moves it
        self.text_spec = text_spec

    # ------------------------------------------------------------------------------------ properties
    @property
    def codec(self) -> TokenCodec:
        """The codec (``encode`` / ``decode`` / ``decode_latent``).

        Raises:
            SaraError: this model has no codec.
        """
        if self._codec is None:
            raise SaraError("this AudioGen has no codec (a token-only release): tokens cannot become audio")
        return self._codec

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz (the codec's; 16000 for AudioGen)."""
        return int(self.codec.sample_rate)

    @property
    def frame_rate(self) -> float:
        """Token frames per second (the codec's; 50 for AudioGen)."""
        return float(self.codec.frame_rate)

    @property
    def config(self) -> LMConfig:
        """The LM hyper-parameters."""
        return self.lm.config

    def _device(self) -> torch.device:
        """Where the LM's weights are."""
        return next(self.lm.parameters()).device

    def networks(self) -> list[nn.Module]:
        """The LM's transformer and the codec's decoder (what :meth:`set_inference` applies to)."""
        decoder = getattr(self._codec, "decoder", None)
        return [self.lm.transformer] + ([decoder] if isinstance(decoder, nn.Module) else [])

    # --------------------------------------------------------------------------------------- tokens
    def encode_text(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """Text-encoder states of the descriptions: ``(states [B, L, text_dim], mask [B, L])`` on the LM's device."""
        states, mask = self.text(prompts)
        return states.to(self._device()), mask.to(self._device())

    @torch.no_grad()
    def token_logits(self, codes: Tensor, prompts: list[str]) -> Tensor:
        """Teacher-forced logits of ``codes [B, K, F]`` given the descriptions (audiocraft ``compute_predictions``).

        Returns:
            ``[B, K, F, V]``; the logit of code ``(k, t)`` sees codes before it in the delay pattern; the
            last ``delay_k`` frames of codebook ``k`` have no prediction and are NaN.
        """
        codes = self._check_codes(codes, len(prompts))
        states, mask = self.encode_text(prompts)
        return self.lm.compute_predictions(codes.to(self._device()), states, mask)[0]

    @torch.no_grad()
    def generate_tokens(self, prompts: list[str], frames: int = 500, cfg_coef: float = 3.0, top_k: int = 250,
                        top_p: float = 0.0, temperature: float = 1.0, greedy: bool = False, seed: int | None = None,
                        prompt_codes: Tensor | None = None, use_cache: bool = True, window_frames: int | None = 500,
                        stride_frames: int = 100) -> Tensor:
        """Sample codes for each description.

        Args:
            prompts: ``B`` descriptions.
            frames: total frames (50 per second), ``prompt_codes`` included.
            cfg_coef: classifier-free guidance coefficient (1 disables guidance).
            top_k: top-k sampling (0 = off; ignored when ``top_p > 0``).
            top_p: nucleus sampling (0 = off).
            temperature: softmax temperature.
            greedy: argmax decoding.
            seed: seeds a private generator (None: the global RNG).
            prompt_codes: ``[B, K, F0]`` codes to continue (``F0 < frames``).
            use_cache: key/value-cached decoding (False: recompute each prefix; same result, slower).
            window_frames: longest single pass (audiocraft AudioGen: 10 s = 500); longer requests continue
                window after window, each from the previous one's last ``window - stride`` frames. None: one pass.
            stride_frames: frames each further window adds (audiocraft ``extend_stride`` 2 s = 100).

        Returns:
            ``[B, K, frames]`` long codes in ``[0, card)``.
        """
        try:
            sampling = SamplingConfig(float(cfg_coef), int(top_k), float(top_p), float(temperature), bool(greedy))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not isinstance(frames, int) or frames < 1:
            raise ConfigError(f"frames must be a positive integer, got {frames!r}")
        if prompt_codes is not None:
            prompt_codes = self._check_codes(prompt_codes, len(prompts))
            if prompt_codes.shape[-1] >= frames:
                raise ConfigError(f"prompt_codes has {prompt_codes.shape[-1]} frames; frames must exceed it")
        window, stride = _windows(frames, window_frames, stride_frames)
        generator = self._generator(seed)
        states, mask = self.encode_text(prompts)
        return generate_extended(self.lm.eval(), states, mask, frames, window, stride, sampling, prompt_codes,
                                 generator, use_cache)

    def _generator(self, seed: int | None) -> torch.Generator | None:
        """A private generator on the LM's device seeded with ``seed`` (None: use the global RNG)."""
        if seed is None:
            return None
        if not (isinstance(seed, int) and 0 <= seed < 2**63):
            raise ConfigError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        return torch.Generator(self._device()).manual_seed(seed)

    def _check_codes(self, codes: Tensor, batch: int) -> Tensor:
        """``codes`` as long after checking ``[batch, K, F]`` and the range ``[0, card)`` (ConfigError)."""
        c = self.lm.config
        if codes.dim() != 3 or codes.shape[0] != batch or codes.shape[1] != c.n_q:
            raise ConfigError(f"codes must be [{batch}, {c.n_q}, F], got {list(codes.shape)}")
        if codes.is_floating_point() or bool((codes < 0).any()) or bool((codes >= c.card).any()):
            raise ConfigError(f"codes must be integers in [0, {c.card})")
        return codes.long()

    # ---------------------------------------------------------------------------------------- audio
    @torch.no_grad()
    def forward(self, prompts: list[str], duration: float = 10.0, **generation: Any) -> Tensor:
        """Generate audio: ``B`` descriptions -> ``[B, N]`` waveforms at :attr:`sample_rate`.

        Args:
            prompts: descriptions.
            duration: seconds (frames = ``int(duration * frame_rate)``, as audiocraft).
            **generation: :meth:`generate_tokens` options (``cfg_coef``, ``top_k``, ``seed``, ...).
        """
        frames = self._frames(duration)
        return self.codec.decode(self.generate_tokens(prompts, frames=frames, **generation))[:, 0]

    @torch.no_grad()
    def generate_continuation(self, prompt_wav: Tensor, prompts: list[str], duration: float = 10.0,
                              **generation: Any) -> Tensor:
        """Continue ``prompt_wav [B, 1, T]`` (at :attr:`sample_rate`) to ``duration`` seconds in total: ``[B, N]``."""
        prompt_codes = self.codec.encode(prompt_wav.to(self._device()))
        frames = self._frames(duration)
        codes = self.generate_tokens(prompts, frames=frames, prompt_codes=prompt_codes, **generation)
        return self.codec.decode(codes)[:, 0]

    @torch.no_grad()
    def acoustic_encoding(self, prompts: list[str] | None = None, codes: Tensor | None = None, frames: int = 500,
                          decode_audio: bool = False, **generation: Any) -> AcousticEncoding:
        """Tokens and E_t2a for descriptions (generated) or for given ``codes [B, K, F]`` (e.g. a real clip's).

        Args:
            prompts: descriptions to generate from (when ``codes`` is None).
            codes: tokens to use as they are.
            frames: frames to generate (50 per second).
            decode_audio: also decode the tokens to audio (for E'_t2a through a mel VAE).
            **generation: :meth:`generate_tokens` options.
        """
        if (prompts is None) == (codes is None):
            raise ConfigError("give either prompts or codes")
        if codes is None:
            codes = self.generate_tokens(list(prompts or []), frames=frames, **generation)
        codes = self._check_codes(codes, codes.shape[0]).to(self._device())
        latent = self.codec.decode_latent(codes).transpose(1, 2)
        audio = self.codec.decode(codes)[:, 0] if decode_audio else None
        return AcousticEncoding(codes, latent, self.frame_rate, audio, self.sample_rate)

    def _frames(self, duration: float) -> int:
        """Token frames of ``duration`` seconds (``int(duration * frame_rate)``, >= 1)."""
        frames = int(float(duration) * self.frame_rate)
        if not frames >= 1:
            raise ConfigError(f"duration {duration!r} s gives no token frame at {self.frame_rate:g} Hz")
        return frames

    # ---------------------------------------------------------------------------------- persistence
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], *, text_encoder: str | os.PathLike[str] | None = None,
                        map_location: str | torch.device = "cpu", dtype: str | torch.dtype | None = None,
                        compile: bool = False) -> AudioGen:
        """Load an audiocraft directory or a sara release (see the module docstring).

        Args:
            path: the directory.
            text_encoder: a local T5 directory replacing the one the model names (or the MiniLM override).
            map_location: device.
            dtype, compile: the networks' compute dtype and compilation (:meth:`set_inference`).

        Raises:
            CheckpointError: neither layout, or weights that do not fit (one line naming the keys).
        """
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        p = Path(path)
        if p.is_file() and p.name in ("state_dict.bin", "config.json"):
            p = p.parent  # the package file itself: its directory holds the rest
        if is_audiocraft_dir(p):
            model = _from_audiocraft(p, text_encoder)
        elif (p / "config.json").is_file():
            model = _from_release(p, text_encoder)
        else:
            raise CheckpointError(f"{p}: neither an audiocraft AudioGen directory (state_dict.bin) nor a sara "
                                  f"AudioGen release (config.json + model.safetensors)")
        return model.to(map_location).eval().set_inference(dtype=dtype, compile=compile)

    def save_pretrained(self, directory: str | os.PathLike[str], codec_source: str | os.PathLike[str] | None = None
                        ) -> Path:
        """Write a sara release: LM weights, the text spec, and the codec (``codec_source`` copied, else the
        codec's own ``save_pretrained``) under ``codec/``."""
        out = save_audiogen_release(directory, self.lm, self.text_spec or TextEncoderSpec(), codec_source,
                                    has_codec=self._codec is not None)
        if codec_source is None and self._codec is not None:
            self._codec.save_pretrained(out / CODEC_DIR)  # type: ignore[attr-defined]
        return out


def save_audiogen_release(directory: str | os.PathLike[str], lm: TokenLM, text_spec: TextEncoderSpec,
                          codec_source: str | os.PathLike[str] | None = None, has_codec: bool = False) -> Path:
    """Write the AudioGen release files: ``config.json`` + ``model.safetensors`` (LM) and, from ``codec_source``
    (a codec release directory or an audiocraft compression file), ``codec/``.

    Args:
        has_codec: record a ``codec/`` the caller writes itself (when ``codec_source`` is None).
    """
    out = Path(directory)
    config = {"lm": config_to_dict(lm.config), "text_encoder": config_to_dict(text_spec)}
    codec = CODEC_DIR if codec_source is not None or has_codec else None
    save_release(out, "AudioGen", config, lm.state_dict(), extra={"codec": codec})
    if codec_source is not None:
        _copy_codec(Path(codec_source), out / CODEC_DIR)
    return out


def _windows(frames: int, window_frames: int | None, stride_frames: int) -> tuple[int, int]:
    """``(window, stride)`` for :func:`~sara.audiogen.generation.generate_extended` (None: one window)."""
    if window_frames is None:
        return max(frames, 2), 1
    if not 0 < stride_frames < window_frames:
        raise ConfigError(f"need 0 < stride_frames ({stride_frames}) < window_frames ({window_frames})")
    return int(window_frames), int(stride_frames)


def _check_codec(codec: TokenCodec | None, config: LMConfig) -> None:
    """The codec's codebooks must be the LM's streams (``num_codebooks == n_q``, ``cardinality == card``)."""
    k, card = getattr(codec, "num_codebooks", None), getattr(codec, "cardinality", None)
    if (k is not None and k != config.n_q) or (card is not None and card != config.card):
        raise CheckpointError(f"the codec has {k} codebooks of {card} codes; the LM models {config.n_q} of {config.card}")


def _copy_codec(source: Path, target: Path) -> None:
    """Copy a codec release directory (or an audiocraft compression file) to ``target``."""
    if target.exists():
        shutil.rmtree(target)
    if source.is_dir():
        shutil.copytree(source, target)
    elif source.is_file():
        target.mkdir(parents=True)
        shutil.copy2(source, target / CODEC_FILE)
    else:
        raise CheckpointError(f"{source}: no codec to bundle")


def load_codec(path: Path) -> TokenCodec:
    """``sara.codec.EncodecCodec.from_pretrained(path)`` (a codec release or audiocraft compression file)."""
    try:
        from sara.codec import EncodecCodec  # type: ignore[attr-defined]
    except ImportError:
        raise CheckpointError(f"{path}: loading the codec needs sara.codec.EncodecCodec") from None
    return EncodecCodec.from_pretrained(path)


def _from_audiocraft(path: Path, text_encoder: str | os.PathLike[str] | None) -> AudioGen:
    """LM from ``state_dict.bin``, T5 by name (or ``text_encoder``), codec from ``compression_state_dict.bin``."""
    lm, t5_name = load_audiocraft_lm(path)
    t5_dir = Path(text_encoder) if text_encoder is not None else resolve_t5(t5_name, base_dir=path)
    text = load_t5_conditioner(t5_dir)
    codec_file = path / CODEC_FILE
    codec = load_codec(codec_file) if codec_file.is_file() else None
    spec = TextEncoderSpec(kind="t5", path=str(text_encoder) if text_encoder is not None else t5_name)
    return AudioGen(lm, text, codec, spec)


def _from_release(path: Path, text_encoder: str | os.PathLike[str] | None) -> AudioGen:
    """LM from ``model.safetensors``, text encoder from the recorded spec, codec from ``codec/``."""
    payload, state = load_release(path, "AudioGen")
    try:
        lm_config = config_from_dict(LMConfig, payload["config"]["lm"])
        spec = config_from_dict(TextEncoderSpec, payload["config"]["text_encoder"])
    except (KeyError, TypeError):
        raise CheckpointError(f"{path / 'config.json'}: an AudioGen release needs config.lm and config.text_encoder") from None
    if text_encoder is not None:
        spec = TextEncoderSpec(kind=spec.kind, path=str(text_encoder))
    lm = TokenLM(lm_config)
    load_state_dict_strict(lm, state, source=str(path))
    codec = load_codec(path / payload["codec"]) if payload.get("codec") else None
    return AudioGen(lm, build_text_conditioner(spec, base_dir=path), codec, spec)
