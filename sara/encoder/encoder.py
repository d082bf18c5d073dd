"""``SemanticEncoder``: the public dasheng-compatible encoder (loading, ``encode`` at any rate, saving).

Latents are dasheng's final-LayerNorm output, channels first: ``[B, D, N]`` at 25 Hz, with no scaling or
projection -- exactly what the SemanticVocoder encode path produces (resample to 16 kHz with torchaudio's
default sinc resampler, then average channels).

Shapes: ``B`` batch, ``C`` channels, ``T`` samples, ``D`` latent dim, ``N`` latent frames.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sara.audio import dsp
from sara.audio.io import check_sample_rate, check_waveform
from sara.encoder.config import EncoderConfig
from sara.encoder.frontend import DbScope, db_with_floor, power_mel_frames
from sara.encoder.hf_layout import HF_WEIGHT_NAMES, is_hf_dasheng_dir, load_hf_dasheng
from sara.encoder.loading import (
    config_from_official,
    infer_config,
    prepare_state_dict,
    split_official_checkpoint,
)
from sara.encoder.model import DashengEncoder
from sara.errors import AudioError, CheckpointError
from sara.serialization import PretrainedMixin, is_release_dir, load_state_dict_strict, load_torch_checkpoint

__all__ = ["SemanticEncoder"]

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")


class SemanticEncoder(PretrainedMixin, DashengEncoder):
    """Dasheng audio encoder with the sara loading / encoding API.

    Its ``state_dict()`` keys are the official dasheng keys (without the rebuilt STFT window and mel
    filterbank buffers), so ``cond_module.dasheng_model.*`` weights of a SemanticVocoder load directly.

    Example:
        >>> enc = SemanticEncoder.from_pretrained("dasheng_base.pt")
        >>> z = enc.encode(wav, 24000)        # wav [B, T] -> z [B, 768, N], 25 Hz
    """

    config_class = EncoderConfig

    # ------------------------------------------------------------------------------ properties

    @property
    def sample_rate(self) -> int:
        """Rate the network runs at (16000 Hz); inputs at other rates are resampled."""
        return self.config.sample_rate

    @property
    def frame_rate(self) -> float:
        """Latent frames per second (25.0)."""
        return self.config.frame_rate

    @property
    def latent_dim(self) -> int:
        """Latent channels D (768 for dasheng_base)."""
        return self.config.embed_dim

    # -------------------------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> SemanticEncoder:
        """Load an encoder, in eval mode.

        Args:
            path: a sara release dir (``config.json`` + ``model.safetensors``); an official dasheng ``.pt``
                (``{"model": state_dict, "config": {...}}``); the AudioSet-finetuned plain state dict
                (``outputlayer.*`` ignored); a transformers dasheng dir as on the hub (``mispeech/dasheng-*``:
                ``config.json`` + ``model.safetensors`` / ``pytorch_model.bin``, read without running its
                code, see :mod:`sara.encoder.hf_layout`) or a weight file inside one; or a directory holding
                exactly one checkpoint file.
            map_location: device for the weights.

        Raises:
            CheckpointError: missing path or an unknown layout (the message names missing/unexpected keys).
        """
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        p = Path(path)
        if p.is_dir():
            if is_release_dir(p):
                return cls.from_release(p, map_location=map_location)
            if is_hf_dasheng_dir(p):
                return cls._from_transformers_dir(p, None).to(map_location)
            p = _single_checkpoint_in(p)
        elif _is_hf_weight_file(p):  # a shard stands for its whole directory
            return cls._from_transformers_dir(p.parent, p if p.name in HF_WEIGHT_NAMES else None).to(map_location)
        if not p.is_file():
            raise CheckpointError(f"{p}: no such encoder checkpoint or directory")
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd, official = load_file(str(p)), None
        else:
            sd, official = split_official_checkpoint(load_torch_checkpoint(p), str(p))
        return cls.from_official_state_dict(sd, official, source=str(p)).to(map_location)

    @classmethod
    def _from_transformers_dir(cls, directory: Path, weights: Path | None) -> SemanticEncoder:
        """A ``mispeech/dasheng-*`` transformers dir (``weights``: one file of it, else its own choice)."""
        sd, official, source = load_hf_dasheng(directory, weights)
        return cls.from_official_state_dict(sd, official, source=source)

    @classmethod
    def from_official_state_dict(
        cls,
        state_dict: Mapping[str, Tensor],
        config: EncoderConfig | Mapping[str, Any] | None = None,
        *,
        source: str = "state dict",
    ) -> SemanticEncoder:
        """Build from an official dasheng state dict (e.g. ``cond_module.dasheng_model.*`` with the prefix stripped).

        Args:
            state_dict: official keys; ``front_end.0.*`` buffers and ``outputlayer.*`` are optional.
            config: an :class:`EncoderConfig`, an official dasheng config dict, or None to infer the
                architecture from tensor shapes.
            source: name used in error messages.

        Returns:
            The encoder in eval mode, weights loaded strictly.
        """
        if isinstance(config, EncoderConfig):
            cfg = config
        elif config is not None:
            cfg = config_from_official(config, state_dict, source)
        else:
            cfg = infer_config(state_dict, source)
        model = cls(cfg)
        load_state_dict_strict(model, prepare_state_dict(state_dict, cfg, source), source=source)
        return model.eval()

    # ------------------------------------------------------------------------------- encoding

    def to_model_rate(self, waveform: Tensor, sample_rate: int) -> Tensor:
        """``[B, T]`` or ``[B, C, T]`` at ``sample_rate`` -> mono ``[B, T16]`` at 16 kHz (resample, then mean).

        Raises:
            AudioError: bad shape or sample rate, empty or non-finite audio, or shorter than
                ``config.min_samples`` after resampling.
        """
        if not isinstance(waveform, Tensor):
            raise AudioError(f"encode expects a tensor, got {type(waveform).__name__}")
        if waveform.dim() == 2:
            waveform = waveform.unsqueeze(1)
        if waveform.dim() != 3:
            raise AudioError(f"encode expects [B, T] or [B, C, T], got shape {tuple(waveform.shape)}")
        sample_rate = check_sample_rate(sample_rate, name="encode")
        check_waveform(waveform, sample_rate, name="encode", max_duration=None)
        waveform = waveform.float()
        if sample_rate != self.sample_rate:
            waveform = dsp.resample(waveform, sample_rate, self.sample_rate)
        if waveform.shape[-1] < self.config.min_samples:
            raise AudioError(f"audio too short to encode: {waveform.shape[-1]} samples at {self.sample_rate} Hz "
                             f"(need >= {self.config.min_samples})")
        return waveform[:, 0] if waveform.shape[1] == 1 else waveform.mean(dim=1)  # mono: no copy

    @torch.no_grad()
    def encode(
        self,
        waveform: Tensor,
        sample_rate: int,
        lengths: Tensor | None = None,
        *,
        db_scope: DbScope = "batch",
    ) -> Tensor:
        """Audio -> semantic latents.

        Args:
            waveform: ``[B, T]`` or ``[B, C, T]`` at ``sample_rate`` Hz (channels are averaged after resampling).
            sample_rate: input rate in Hz.
            lengths: optional ``[B]`` valid samples (at ``sample_rate``); padded tokens are masked as keys.
            db_scope: ``"batch"`` = dasheng's batch-wide top_db floor (official behaviour); ``"item"`` makes each
                item independent of its batch mates.

        Returns:
            ``[B, D, N]`` latents at 25 Hz, ``N = (1 + T16 // 160 - 4) // 4 + 1`` with ``T16 = ceil(T * 16000 / sr)``.
        """
        wav = self.to_model_rate(waveform, sample_rate).to(self.norm.weight.device)
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=wav.device)
            lengths = torch.ceil(lengths.double() * self.sample_rate / sample_rate).long()
        return self(wav, lengths, db_scope=db_scope).transpose(1, 2)

    @torch.no_grad()
    def encode_long(self, waveform: Tensor, sample_rate: int, *, block_seconds: float = 60.0) -> Tensor:
        """One long clip -> latents in bounded memory: spectrogram and transformer run one token chunk at a time.

        Equal (to float round-off) to ``encode(waveform[None], sample_rate)[0]``: a first pass finds the whole
        clip's peak power for the dB floor, and the transformer's chunks are independent anyway.  Besides the
        input and the output, memory stays that of one chunk (about 10 s).

        Args:
            waveform: ``[T]`` or ``[C, T]`` at ``sample_rate`` Hz.
            sample_rate: input rate in Hz.
            block_seconds: frames of the first (peak) pass per block, in seconds (STFT memory only).

        Returns:
            ``[D, N]`` latents at 25 Hz.
        """
        wav = self.to_model_rate(waveform.reshape(1, -1, waveform.shape[-1]), sample_rate)[0]
        wav = wav.to(self.norm.weight.device)
        mel, hop = self.front_end[0], self.config.hop_length
        num_frames = 1 + wav.shape[-1] // hop
        block = max(1, math.ceil(block_seconds * self.sample_rate / hop))
        peak = max(float(power_mel_frames(mel, wav, a, min(a + block, num_frames)).max())
                   for a in range(0, num_frames, block))
        p = self.config.patch_size[1]
        step = self.config.tokens_per_chunk * p  # frames of one transformer chunk
        out = wav.new_empty(max(0, (num_frames - p) // p + 1), self.config.embed_dim)
        for a in range(0, num_frames, step):
            part = self._encode_frames(wav, a, min(a + step, num_frames), peak)
            out[a // p : a // p + part.shape[0]] = part
        return out.transpose(0, 1)

    def _encode_frames(self, wav: Tensor, start: int, stop: int, peak: float) -> Tensor:
        """Spectrogram frames ``[start, stop)`` of ``wav [T]`` (dB floor from ``peak``) -> latents ``[L, D]``."""
        db = db_with_floor(power_mel_frames(self.front_end[0], wav, start, stop), peak, self.front_end[1].top_db)
        return self.forward_spectrogram(self.normalize_spec(db[None]))[0]
def _is_hf_weight_file(path: Path) -> bool:
    """True for ``model.safetensors`` / ``pytorch_model.bin`` (or a shard) inside a transformers dasheng dir."""
    return (path.is_file() and path.name.startswith(("model", "pytorch_model")) and is_hf_dasheng_dir(path.parent)
            and not is_release_dir(path.parent))


def _single_checkpoint_in(directory: Path) -> Path:
    """The one checkpoint file inside ``directory``."""
    found = sorted(f for f in directory.iterdir() if f.is_file() and f.suffix in _CHECKPOINT_SUFFIXES)
    if len(found) != 1:
        what = "no checkpoint file" if not found else f"{len(found)} checkpoint files ({', '.join(f.name for f in found)})"
        raise CheckpointError(f"{directory}: not a sara release dir and holds {what}; pass the file itself")
    return found[0]
