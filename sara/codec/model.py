"""EncodecCodec: the 16 kHz EnCodec tokenizer of AudioGen (SEANet + RVQ), audiocraft-compatible.

State-dict keys are audiocraft's ``EncodecModel`` keys (``encoder.model.{i}...``, ``decoder.model.{i}...``,
``quantizer.vq.layers.{k}._codebook.{inited,cluster_size,embed,embed_avg}``), so an audiocraft
``compression_state_dict.bin`` loads strictly (:mod:`sara.codec.official`).

Shapes: waveforms ``[B, 1, T]`` at ``sample_rate``; codes ``[B, K, F]`` long with ``F = ceil(T / hop)``;
latents ``[B, D, F]`` at ``frame_rate`` Hz.  For ``audiogen()``: hop 320, 50 Hz, K 4, cardinality 2048, D 128.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from sara.codec.config import CodecConfig
from sara.codec.quantizer import ResidualVectorQuantizer
from sara.codec.seanet import SEANetDecoder, SEANetEncoder
from sara.errors import AudioError, SaraError
from sara.serialization import PretrainedMixin, is_release_dir

__all__ = ["CodecOutput", "EncodecCodec"]


@dataclass
class CodecOutput:
    """Result of :meth:`EncodecCodec.forward` (one reconstruction pass).

    Attributes:
        audio: ``[B, C, T]`` reconstruction trimmed to the input length.
        codes: ``[B, K, F]``.
        latent: ``[B, D, F]`` quantized latent (straight-through in training).
        commitment: scalar commitment loss (0 in eval mode).
    """

    audio: Tensor
    codes: Tensor
    latent: Tensor
    commitment: Tensor


class EncodecCodec(nn.Module, PretrainedMixin):
    """SEANet encoder -> residual VQ -> SEANet decoder.

    Args:
        config: the architecture (:class:`CodecConfig`; ``audiogen()`` is AudioGen's tokenizer).
    """

    config_class: ClassVar[type] = CodecConfig

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = SEANetEncoder(config)
        self.decoder = SEANetDecoder(config)
        self.quantizer = ResidualVectorQuantizer(config)

    # ---------------------------------------------------------------------------------- rates
    @property
    def sample_rate(self) -> int:
        """Audio rate in Hz."""
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        """Samples per token frame."""
        return self.config.hop_length

    @property
    def frame_rate(self) -> int:
        """Token frames per second."""
        return self.config.frame_rate

    @property
    def num_codebooks(self) -> int:
        """Codebooks ``K`` (tokens per frame)."""
        return self.config.num_codebooks

    @property
    def cardinality(self) -> int:
        """Entries per codebook (token ids are ``0 .. cardinality - 1``)."""
        return self.config.bins

    @property
    def latent_dim(self) -> int:
        """Latent channels ``D`` of :meth:`decode_latent`."""
        return self.config.dimension

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return next(self.parameters()).device

    # ------------------------------------------------------------------------------- checking
    def _check_audio(self, wav: Tensor) -> Tensor:
        if wav.dim() != 3 or wav.shape[1] != self.config.channels:
            raise AudioError(f"codec input must be [B, {self.config.channels}, T] at {self.sample_rate} Hz, "
                             f"got shape {tuple(wav.shape)}")
        if wav.shape[-1] == 0 or wav.shape[0] == 0:
            raise AudioError("codec input audio is empty")
        if not bool(torch.isfinite(wav).all()):
            raise AudioError("codec input audio contains NaN or infinite samples")
        return wav.to(self.device, torch.float32)

    def _check_codes(self, codes: Tensor) -> Tensor:
        if codes.dim() != 3 or codes.shape[1] != self.num_codebooks:
            raise SaraError(f"codes must be [B, {self.num_codebooks}, F], got shape {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise SaraError(f"codes must be integer token ids, got {codes.dtype}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.cardinality):
            raise SaraError(f"codes must lie in [0, {self.cardinality}), got [{int(codes.min())}, {int(codes.max())}]")
        return codes.to(self.device, torch.long)

    # ------------------------------------------------------------------------------------ API
    @torch.no_grad()
    def encode(self, wav: Tensor) -> Tensor:
        """Tokens of ``wav [B, C, T]`` (``sample_rate`` Hz): ``codes [B, K, ceil(T / hop)]`` long.

        Raises:
            AudioError: wrong shape, empty or non-finite audio.
        """
        return self.quantizer.encode(self.encoder(self._check_audio(wav)))

    @torch.no_grad()
    def decode_latent(self, codes: Tensor) -> Tensor:
        """Continuous latent ``[B, D, F]`` of ``codes [B, K, F]``: the sum of the K selected codebook rows
        (audiocraft ``EncodecModel.decode_latent``; DC-LDM's E_t2a before transposition)."""
        return self.quantizer.decode(self._check_codes(codes))

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Waveform ``[B, C, F * hop]`` of ``codes [B, K, F]`` (trim to the original length yourself)."""
        return self.decoder(self.quantizer.decode(self._check_codes(codes)))

    def forward(self, wav: Tensor, generator: torch.Generator | None = None) -> CodecOutput:
        """Differentiable reconstruction of ``wav [B, C, T]`` (codebook EMA/k-means updates in training mode).

        Args:
            wav: audio at ``sample_rate``.
            generator: randomness for k-means seeding and dead-code replacement (training only).
        """
        wav = self._check_audio(wav)
        q = self.quantizer(self.encoder(wav), generator)
        audio = self.decoder(q.quantized)[..., : wav.shape[-1]]
        return CodecOutput(audio, q.codes, q.quantized, q.commitment)

    def num_frames(self, num_samples: int) -> int:
        """Token frames for ``num_samples`` samples: ``ceil(num_samples / hop)``."""
        return -(-num_samples // self.hop_length)

    # -------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Any:
        """Load a sara release directory or an audiocraft ``compression_state_dict.bin`` (file or its directory).

        Raises:
            CheckpointError: unknown layout, unreadable config, missing/unexpected keys.
        """
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        if is_release_dir(path):
            return cls.from_release(path, map_location=map_location)
        from sara.codec.official import load_audiocraft_codec

        return load_audiocraft_codec(path, map_location=map_location)
