"""The text-encoder interface and the shared Hugging Face implementation.

Captions are encoded **one at a time** (a batch of one, so no padding inside the encoder) and the
per-caption states are then padded with zeros / ``False``, exactly like the official ``ContentEncoder``.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from sara.errors import SaraError

__all__ = ["HFTextEncoder", "TextEncoder", "pad_states", "quiet_transformers"]

# Hard cap on the number of tokens per caption (flan-t5's tokenizer max length).
MAX_TOKENS = 512


class TextEncoder(nn.Module, ABC):
    """A frozen text encoder.

    Subclasses implement :meth:`encode_one`; :meth:`encode` batches by padding.  The module is kept in
    eval mode with ``requires_grad=False`` on every parameter.
    """

    dim: int

    @abstractmethod
    def encode_one(self, prompt: str) -> Tensor:
        """Encode one caption.

        Returns:
            ``[L, dim]`` float32 token states (``L >= 1``).
        """

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """Encode a batch of captions.

        Args:
            prompts: ``B`` non-empty strings.

        Returns:
            ``(states [B, L, dim] float32, mask [B, L] bool)`` where ``mask`` is True on real tokens and
            padded positions hold zeros.
        """
        if isinstance(prompts, str):
            raise TypeError("encode() takes a list of prompts, not a single string")
        if len(prompts) == 0:
            raise SaraError("no prompts given")
        return pad_states([self.encode_one(p) for p in prompts])

    def train(self, mode: bool = True) -> TextEncoder:
        """Always stays in eval mode (frozen encoder)."""
        return super().train(False)


def pad_states(states: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Pad ``[L_i, D]`` tensors to ``([B, L, D], mask [B, L])`` with zeros / False."""
    lengths = torch.tensor([s.shape[0] for s in states])
    padded = pad_sequence(states, batch_first=True, padding_value=0.0)
    mask = torch.arange(padded.shape[1])[None, :] < lengths[:, None]
    return padded, mask.to(padded.device)


class HFTextEncoder(TextEncoder):
    """A transformers tokenizer + encoder returning token-level ``last_hidden_state``.

    Args:
        tokenizer: a transformers tokenizer.
        model: a transformers encoder (``T5EncoderModel``, ``BertModel``, ...).
        dim: hidden size of ``model``.
        max_length: truncation length in tokens (capped by the tokenizer's own maximum).
    """

    def __init__(self, tokenizer, model: nn.Module, dim: int, max_length: int = MAX_TOKENS) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.model.requires_grad_(False)
        self.dim = int(dim)
        tok_max = getattr(tokenizer, "model_max_length", max_length) or max_length
        self.max_length = int(min(max_length, tok_max))

    @torch.no_grad()
    def encode_one(self, prompt: str) -> Tensor:
        if not isinstance(prompt, str) or not prompt.strip():
            raise SaraError("empty prompt")
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(prompt, truncation=True, max_length=self.max_length, return_tensors="pt")
        ids = tokens["input_ids"].to(device)
        attn = tokens["attention_mask"].to(device)
        # fp32 regardless of any surrounding autocast, like the official encoder
        with torch.autocast(device_type=device.type, enabled=False):
            hidden = self.model(input_ids=ids, attention_mask=attn).last_hidden_state
        return hidden[0].float()


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading progress bars while loading (restores the previous setting)."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()
