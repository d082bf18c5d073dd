"""DC-LDM's acoustic condition: AudioGen tokens -> E_t2a or E'_t2a, with masks and positions, and its null value.

* **E_t2a** (``kind="t2a"``): the codec's dequantised latent of the tokens (``decode_latent``: the sum of the K
  codebook rows), frames first: ``[B, F, 128]`` at 50 Hz for AudioGen.
* **E'_t2a** (``kind="t2a_mel"``): the tokens decoded to 16 kHz audio by the codec, through Tango's front end
  (:func:`sara.mel.frontend.tango_log_mel`) and the mel VAE (``encode_latents(sample=False)``: the posterior
  mode, so the condition is deterministic), ``[B, C, T', F']`` reshaped to the sequence ``[B, T', C * F']``
  (``8 * 16 = 128`` wide at 25 Hz for Tango's VAE), as the paper describes.

Positions (a design choice; the paper does not say): fixed **sinusoidal** positions of the frame index
(``sin``/``cos`` interleaved, period scale 10000, as "Attention is all you need"), added to the states before
padding.  Chosen over learned positions because they need no parameters (the added-module counts stay the
paper's), extend to any generation length, and zero-initialised output projections keep the identity at init
regardless.  ``positions="none"`` turns them off (the diffusers transformer itself has no positional signal, so
the acoustic attention is then order-free).

Masks: ``[B, F]`` bool, True on real frames; padded frames are zero and masked.

Null condition (the unconditional branch of Eq. 8 and training's condition dropout): :func:`null_acoustic`, one
zero frame, unmasked.  The extra cross-attention has no key/value biases (diffusers' default
``attention_bias=False``), so zero states give zero keys and values and the attention output is the same for
any number of unmasked zero frames: dropping a row's acoustic states to zeros in training (mask kept) and
guiding with :func:`null_acoustic` are exactly the same input to the model.  No positions are added to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sara.errors import ConfigError

__all__ = ["AcousticConfig", "AcousticEncoder", "add_positions", "latents_to_sequence", "null_acoustic",
           "pad_sequences", "sinusoidal_positions"]

AcousticKind = Literal["t2a", "t2a_mel"]


@dataclass(frozen=True)
class AcousticConfig:
    """How the acoustic condition is computed.

    Attributes:
        kind: ``"t2a"`` (E_t2a, codec latent) or ``"t2a_mel"`` (E'_t2a, decoded audio through the mel VAE).
        positions: ``"sinusoidal"`` (added to the states) or ``"none"``.
        position_scale: factor on the sinusoidal positions.
        max_period: period scale of the positions.
        cfg_coef / top_k / temperature: AudioGen sampling at inference (audiocraft's defaults: 3.0, 250, 1.0).
    """

    kind: AcousticKind = "t2a"
    positions: Literal["sinusoidal", "none"] = "sinusoidal"
    position_scale: float = 1.0
    max_period: float = 10_000.0
    cfg_coef: float = 3.0
    top_k: int = 250
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("t2a", "t2a_mel"):
            raise ValueError(f"acoustic kind must be 't2a' or 't2a_mel', got {self.kind!r}")
        if self.positions not in ("sinusoidal", "none"):
            raise ValueError(f"positions must be 'sinusoidal' or 'none', got {self.positions!r}")
        if not (math.isfinite(self.position_scale) and self.max_period > 1):
            raise ValueError("position_scale must be finite and max_period > 1")
        if self.top_k < 0 or not self.temperature >= 0 or not math.isfinite(self.cfg_coef):
            raise ValueError("top_k and temperature must be >= 0 and cfg_coef finite")


def sinusoidal_positions(length: int, dim: int, max_period: float = 10_000.0) -> Tensor:
    """``[length, dim]`` float32: ``pe[t, 2i] = sin(t / p^(2i/dim))``, ``pe[t, 2i+1] = cos(...)`` (odd ``dim``:
    the last column is a sine)."""
    t = torch.arange(length, dtype=torch.float64)[:, None]
    freqs = max_period ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    pe = torch.zeros(length, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(t * freqs)
    pe[:, 1::2] = torch.cos(t * freqs[: dim // 2])
    return pe.float()


def add_positions(states: Tensor, cfg: AcousticConfig) -> Tensor:
    """``states [B, F, D]`` plus the configured positions of frames ``0 .. F-1`` (unchanged for ``"none"``)."""
    if cfg.positions == "none":
        return states
    pe = sinusoidal_positions(states.shape[1], states.shape[2], cfg.max_period).to(states)
    return states + cfg.position_scale * pe


def null_acoustic(batch: int, dim: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """The null acoustic condition: ``(zeros [batch, 1, dim], mask [batch, 1] True)`` (see the module doc)."""
    return torch.zeros(batch, 1, dim, device=device), torch.ones(batch, 1, dtype=torch.bool, device=device)


def pad_sequences(rows: list[Tensor]) -> tuple[Tensor, Tensor]:
    """``B`` tensors ``[F_i, D]`` -> ``(states [B, max F_i, D], mask [B, max F_i])``, zero-padded on the right."""
    if not rows:
        raise ConfigError("no acoustic sequences to pad")
    length = max(max(r.shape[0] for r in rows), 1)
    states = rows[0].new_zeros(len(rows), length, rows[0].shape[1])
    mask = torch.zeros(len(rows), length, dtype=torch.bool, device=rows[0].device)
    for i, r in enumerate(rows):
        states[i, : r.shape[0]] = r
        mask[i, : r.shape[0]] = True
    return states, mask


def latents_to_sequence(z: Tensor) -> Tensor:
    """Mel-VAE latents ``[B, C, T', F']`` -> the sequence ``[B, T', C * F']`` (channel-major per frame)."""
    return z.permute(0, 2, 1, 3).reshape(z.shape[0], z.shape[2], z.shape[1] * z.shape[3])


class AcousticEncoder(nn.Module):
    """Frozen AudioGen (+ mel VAE for E'_t2a): prompts, codes or audio -> ``(states [B, F, D], mask [B, F])``.

    Args:
        audiogen: a :class:`sara.audiogen.AudioGen` with its codec.
        config: :class:`AcousticConfig`.
        vae: the mel VAE (required for ``"t2a_mel"``).
        mel_config: Tango's front end for ``"t2a_mel"`` (default: the paper's with the VAE's mel bins).
    """

    def __init__(self, audiogen: Any, config: AcousticConfig | None = None, vae: Any = None,
                 mel_config: Any = None) -> None:
        super().__init__()
        self.audiogen = audiogen.eval().requires_grad_(False)
        self.config = config if config is not None else AcousticConfig()
        if self.config.kind == "t2a_mel" and vae is None:
            raise ConfigError("the 't2a_mel' acoustic encoding (E'_t2a) needs the mel VAE")
        self._vae = [vae]  # not a submodule: the pipeline owns (and saves) the VAE
        self.mel_config = mel_config if mel_config is not None or vae is None else _default_mel(vae)

    def train(self, mode: bool = True) -> AcousticEncoder:
        """Stays in eval mode (frozen)."""
        return super().train(False)

    @property
    def vae(self) -> Any:
        """The mel VAE (None for E_t2a)."""
        return self._vae[0]

    @property
    def codec(self) -> Any:
        """AudioGen's codec."""
        return self.audiogen.codec

    @property
    def dim(self) -> int:
        """Width ``D`` of the states: the codec's latent (E_t2a) or ``C * n_mels / f`` (E'_t2a)."""
        if self.config.kind == "t2a":
            return int(self.codec.latent_dim)
        return int(self.vae.latent_channels * (self.mel_config.n_mels // self.vae.downsample_factor))

    def token_frames(self, seconds: float) -> int:
        """Token frames covering ``seconds``: ``ceil(seconds * frame_rate)`` (>= 1)."""
        return max(1, math.ceil(round(seconds * float(self.codec.frame_rate), 6)))

    @torch.no_grad()
    def raw_from_codes(self, codes: Tensor) -> Tensor:
        """``codes [B, K, F]`` -> states without positions ``[B, F', D]`` (F' = F for E_t2a, ``2F / f`` rounded
        up for E'_t2a at hop 320 / 160)."""
        codes = codes.to(next(self.audiogen.lm.parameters()).device)
        if self.config.kind == "t2a":
            return self.codec.decode_latent(codes).transpose(1, 2).float()
        from sara.mel.frontend import tango_log_mel

        wav = self.codec.decode(codes)[:, 0].float()
        f, hop = self.vae.downsample_factor, self.mel_config.hop_length
        frames = max(f, math.ceil(wav.shape[-1] / hop / f) * f)
        mel = tango_log_mel(wav, int(self.codec.sample_rate), frames, self.mel_config)
        z = self.vae.encode_latents(mel[:, None].to(_device(self.vae)), sample=False)
        return latents_to_sequence(z).float()

    def finish(self, raw: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Add positions to each ``[F_i, D]`` row, then pad: ``(states [B, F, D], mask [B, F])``."""
        return pad_sequences([add_positions(r[None], self.config)[0] for r in raw])

    def from_codes(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """The condition of given codes ``[B, K, F]`` (e.g. a real clip's)."""
        return self.finish(list(self.raw_from_codes(codes)))

    @torch.no_grad()
    def generate_codes(self, prompts: list[str], seconds: float, seed: int | None = None) -> Tensor:
        """AudioGen LM tokens ``[B, K, token_frames(seconds)]`` with the configured sampling."""
        c = self.config
        return self.audiogen.generate_tokens(list(prompts), frames=self.token_frames(seconds), cfg_coef=c.cfg_coef,
                                             top_k=c.top_k, temperature=c.temperature, seed=seed)

    def from_prompts(self, prompts: list[str], seconds: float, seed: int | None = None) -> tuple[Tensor, Tensor]:
        """text -> AudioGen LM -> tokens -> condition ``(states [B, F, D], mask [B, F])``."""
        return self.from_codes(self.generate_codes(prompts, seconds, seed))

    @torch.no_grad()
    def from_audio(self, waveform: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
        """A reference clip ``[B, N]`` (any rate) -> codec tokens -> condition (style transfer)."""
        from sara.audio.dsp import resample

        wav = waveform[None] if waveform.ndim == 1 else waveform
        wav = resample(wav.float(), int(sample_rate), int(self.codec.sample_rate))
        return self.from_codes(self.codec.encode(wav[:, None]))


def _default_mel(vae: Any) -> Any:
    from sara.mel.frontend import MelConfig

    return MelConfig(n_mels=int(vae.config.n_mels))


def _device(module: Any) -> torch.device:
    return next(module.parameters()).device
