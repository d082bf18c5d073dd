"""Text conditioning of the UNet: prompts -> (states ``[B, L, D]``, bool mask ``[B, L]``), and the
unconditional input classifier-free guidance compares against.

* :class:`TangoTextConditioner`: FLAN-T5 exactly as declare-lab/tango ``models.py`` ``AudioDiffusion`` uses it.
  ``encode`` = ``encode_text``: the whole batch tokenised together (``padding=True``, i.e. to the longest prompt;
  truncation at ``model_max_length``), ``T5EncoderModel`` ``last_hidden_state``, mask = ``attention_mask == 1``.
  ``encode_unconditional`` = the unconditional half of ``encode_text_classifier_free``: the T5 states of ""
  tokenised with ``padding="max_length"`` to the conditional length.
* :class:`MiniLMConditioner`: sara's offline MiniLM encoder for the demo.  Its encoder refuses empty prompts,
  so the unconditional input is defined as **zero states with a one-token mask** (first position True).  That is
  exactly what training-time condition dropout shows the UNet: dropout zeroes a sample's states and keeps its
  mask (Tango's ``--uncondition``), and with zero states every cross-attention key and value is zero (diffusers'
  ``to_k`` / ``to_v`` have no bias), so the attention output is the same for any number of unmasked positions.

Tango itself trains with zeroed states but guides with the "" encoding; the T5 path keeps that (official)
behaviour, the MiniLM demo has no such mismatch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sara.errors import SaraError

__all__ = ["MiniLMConditioner", "TangoTextConditioner", "TextConditioner", "build_conditioner"]


class TextConditioner(nn.Module, ABC):
    """A frozen text encoder seen the way the UNet sees it (always in eval mode, no gradients).

    Attributes:
        dim: width ``D`` of the states (the UNet's ``cross_attention_dim``).
    """

    dim: int

    @abstractmethod
    def encode(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """Conditional input: ``(states [B, L, D] float32, mask [B, L] bool)`` for ``B`` prompts."""

    @abstractmethod
    def encode_unconditional(self, batch: int, length: int) -> tuple[Tensor, Tensor]:
        """Unconditional input: ``(states [batch, length, D], mask [batch, length] bool)``."""

    def encode_for_guidance(self, prompts: list[str]) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """``(cond, uncond)`` with the unconditional input as long as the conditional one (Tango's CFG input)."""
        cond = self.encode(prompts)
        return cond, self.encode_unconditional(cond[0].shape[0], cond[0].shape[1])

    def train(self, mode: bool = True) -> TextConditioner:
        """Stays in eval mode (frozen encoder)."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        """Where the encoder's weights are."""
        return next(self.parameters()).device


class TangoTextConditioner(TextConditioner):
    """FLAN-T5 text states as Tango computes them (see the module docstring).

    Args:
        tokenizer: a transformers T5 tokenizer (fast or slow).
        encoder: a ``transformers.T5EncoderModel``.
    """

    def __init__(self, tokenizer: Any, encoder: nn.Module) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.encoder = encoder.eval().requires_grad_(False)
        self.dim = int(encoder.config.d_model)

    @classmethod
    def from_model_dir(cls, name: str | Path, base_dir: str | Path | None = None,
                       state_dict: Mapping[str, Tensor] | None = None) -> TangoTextConditioner:
        """Tokenizer + encoder from a local FLAN-T5 directory (or the HF cache), offline.

        Args:
            name: a directory, or a repo id (e.g. ``google/flan-t5-large``) found in the local HF cache.
            base_dir: directory that a relative ``name`` is resolved against.
            state_dict: encoder weights instead of the directory's own: Tango's ``pytorch_model_main.bin``
                ``text_encoder.*`` keys with the prefix stripped.

        Raises:
            SaraError / CheckpointError: nothing found, or weights that do not fit (one line).
        """
        from sara.text.t5 import T5TextEncoder, resolve_model_dir

        t5 = T5TextEncoder(resolve_model_dir(str(name), base_dir), state_dict=state_dict)
        return cls(t5.tokenizer, t5.model)

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """Tango's ``encode_text``: ``(states [B, L_max, D], mask [B, L_max])``, ``L_max`` = longest prompt."""
        _check_prompts(prompts, allow_empty=True)
        tokens = self.tokenizer(list(prompts), max_length=self.tokenizer.model_max_length, padding=True,
                                truncation=True, return_tensors="pt")
        return self._run(tokens)

    @torch.no_grad()
    def encode_unconditional(self, batch: int, length: int) -> tuple[Tensor, Tensor]:
        """T5 states of "" padded to ``length`` tokens (``padding="max_length"``), as Tango guides with."""
        _check_size(batch, length)
        tokens = self.tokenizer([""] * batch, max_length=length, padding="max_length", truncation=True,
                                return_tensors="pt")
        return self._run(tokens)

    def _run(self, tokens: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        device = self.device
        ids, attn = tokens["input_ids"].to(device), tokens["attention_mask"].to(device)
        with torch.autocast(device_type=device.type, enabled=False):
            states = self.encoder(input_ids=ids, attention_mask=attn)[0]
        return states.float(), attn == 1


class MiniLMConditioner(TextConditioner):
    """sara's MiniLM text states (``sara.text``), with zero states + one-token mask as the unconditional input.

    Args:
        encoder: a :class:`sara.text.TextEncoder` (e.g. :class:`~sara.text.MiniLMTextEncoder`, 384-d); prompts
            are encoded one at a time and padded with zeros / False.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.dim = int(encoder.dim)

    def encode(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """``(states [B, L_max, 384], mask [B, L_max])``; empty prompts are refused (``SaraError``)."""
        _check_prompts(prompts, allow_empty=False)
        states, mask = self.encoder.encode(list(prompts))
        return states.float(), mask

    def encode_unconditional(self, batch: int, length: int) -> tuple[Tensor, Tensor]:
        """Zero states ``[batch, length, D]`` with only the first position unmasked (see the module doc)."""
        _check_size(batch, length)
        device = self.device
        mask = torch.zeros(batch, length, dtype=torch.bool, device=device)
        mask[:, 0] = True
        return torch.zeros(batch, length, self.dim, device=device), mask


def build_conditioner(spec: Any, base_dir: str | Path | None = None,
                      state_dict: Mapping[str, Tensor] | None = None) -> TextConditioner:
    """The conditioner for a :class:`sara.text.TextEncoderSpec` (or its dict): ``"t5"`` -> Tango's FLAN-T5
    handling, ``"minilm"`` -> :class:`MiniLMConditioner`.  ``state_dict``: T5 weights (Tango's
    ``text_encoder.*`` keys, prefix stripped)."""
    from sara.serialization import config_from_dict
    from sara.text.factory import TextEncoderSpec, build_text_encoder

    if not isinstance(spec, TextEncoderSpec):
        spec = config_from_dict(TextEncoderSpec, dict(spec))
    if spec.kind == "t5":
        assert spec.path is not None
        return TangoTextConditioner.from_model_dir(spec.path, base_dir, state_dict)
    return MiniLMConditioner(build_text_encoder(spec, base_dir))


def _check_prompts(prompts: list[str], allow_empty: bool) -> None:
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)):
        raise SaraError("prompts must be a list of strings")
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise SaraError("prompts must be a non-empty list of strings")
    if not allow_empty and not all(p.strip() for p in prompts):
        raise SaraError("empty prompt (use encode_unconditional for the unconditional input)")


def _check_size(batch: int, length: int) -> None:
    if batch < 1 or length < 1:
        raise SaraError(f"unconditional input needs batch >= 1 and length >= 1, got {batch}, {length}")
