"""Text conditioning of the token LM: tokenizer + frozen encoder -> ``(states [B, L, D_text], mask [B, L])``.

Batching follows audiocraft's ``T5Conditioner.tokenize`` / ``forward`` (``audiocraft/modules/conditioners.py``):
the prompts of a batch are tokenised together with ``padding=True`` and no truncation, the attention mask of
empty descriptions ("", what CFG dropout turns a description into) is zeroed *before* the encoder, and the LM's
``output_proj(states) * mask`` then makes padded and null positions exact zero vectors.  The released model uses
t5-large through the slow sentencepiece ``T5Tokenizer`` (audiocraft pins transformers 4.x); transformers 5 has
no sentencepiece tokenizer any more (and needs protobuf to convert ``spiece.model``), so
:class:`SentencePieceT5Tokenizer` reproduces it with the ``sentencepiece`` library.  The T5 is not in
``state_dict.bin`` and is read from a local directory or the Hugging Face cache (never downloaded).  sara's demo uses the packaged all-MiniLM-L6-v2
(384-d) through the same path (truncated at its 512 positions).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sara.errors import SaraError
from sara.text.factory import TextEncoderSpec
from sara.text.minilm import minilm_model_dir
from sara.text.t5 import resolve_model_dir

__all__ = ["SentencePieceT5Tokenizer", "TextConditioner", "build_text_conditioner", "load_t5_conditioner"]

# audiocraft T5Conditioner.MODELS_DIMS: widths of the encoders a checkpoint may name
T5_DIMS = {"t5-small": 512, "t5-base": 768, "t5-large": 1024, "t5-3b": 1024, "t5-11b": 1024,
           "google/flan-t5-small": 512, "google/flan-t5-base": 768, "google/flan-t5-large": 1024,
           "google/flan-t5-3b": 1024, "google/flan-t5-11b": 1024}


class SentencePieceT5Tokenizer:
    """The slow (legacy) ``T5Tokenizer`` on plain text: sentencepiece ids + ``</s>``, right-padded with ``<pad>``.

    For descriptions without T5's special-token strings (``</s>``, ``<extra_id_N>``) this is exactly what
    transformers 4's ``T5Tokenizer(texts, padding=True)`` returns.

    Args:
        model_file: the ``spiece.model`` of the T5 directory.
    """

    def __init__(self, model_file: str | Path) -> None:
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        self.eos_id = self.sp.eos_id() if self.sp.eos_id() >= 0 else 1
        self.pad_id = self.sp.pad_id() if self.sp.pad_id() >= 0 else 0

    def __call__(self, texts: list[str], return_tensors: str = "pt", padding: bool = True,
                 **_: Any) -> dict[str, Tensor]:
        """``{"input_ids": [B, L] long, "attention_mask": [B, L] long}`` padded to the longest text."""
        ids = [self.sp.encode(t) + [self.eos_id] for t in texts]
        length = max(len(i) for i in ids)
        input_ids = torch.full((len(ids), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(ids), length, dtype=torch.long)
        for row, tokens in enumerate(ids):
            input_ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}


class TextConditioner(nn.Module):
    """A frozen tokenizer + encoder pair encoding a batch of descriptions the way audiocraft does.

    Args:
        tokenizer: a transformers tokenizer.
        model: a transformers encoder returning ``last_hidden_state`` (``T5EncoderModel``, ``BertModel``).
        dim: its hidden width.
        max_length: truncation length in tokens (None: no truncation, as audiocraft's T5 conditioner).
    """

    def __init__(self, tokenizer: Any, model: nn.Module, dim: int, max_length: int | None = None) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self.dim = int(dim)
        self.max_length = max_length

    def train(self, mode: bool = True) -> TextConditioner:
        """Stays in eval mode (frozen encoder, ``finetune: false``)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """Encode ``B`` descriptions ("" = null description).

        Returns:
            ``(states [B, L, dim] float32, mask [B, L] long)``; ``L`` = the longest tokenisation; empty
            descriptions have an all-zero mask.
        """
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
            raise SaraError("prompts must be a list of strings")
        if not prompts:
            raise SaraError("no prompts given")
        device = next(self.model.parameters()).device
        kwargs = {"truncation": True, "max_length": self.max_length} if self.max_length else {}
        tokens = self.tokenizer(list(prompts), return_tensors="pt", padding=True, **kwargs)
        mask = tokens["attention_mask"].to(device).clone()
        mask[[i for i, p in enumerate(prompts) if p == ""]] = 0
        with torch.autocast(device_type=device.type, enabled=False):
            states = self.model(input_ids=tokens["input_ids"].to(device), attention_mask=mask).last_hidden_state
        return states.float(), mask


def load_t5_conditioner(model_dir: str | Path) -> TextConditioner:
    """T5 encoder + tokenizer from a local directory (:class:`SentencePieceT5Tokenizer` when ``spiece.model`` is
    there, as in the HF t5-large snapshot; else the directory's transformers tokenizer)."""
    from transformers import AutoTokenizer, T5EncoderModel

    from sara.text.base import quiet_transformers

    path = Path(model_dir)
    try:
        with quiet_transformers():
            if (path / "spiece.model").is_file():
                tok = SentencePieceT5Tokenizer(path / "spiece.model")
            else:
                tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = T5EncoderModel.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, ImportError) as exc:
        raise SaraError(f"{path}: cannot load the T5 text encoder ({str(exc).splitlines()[0]})") from None
    return TextConditioner(tok, model, model.config.d_model)


def _load_minilm(model_dir: str | Path | None) -> TextConditioner:
    """The packaged all-MiniLM-L6-v2 (or ``model_dir``) as a conditioner (384-d)."""
    from transformers import AutoModel, AutoTokenizer

    from sara.text.base import quiet_transformers

    path = Path(model_dir) if model_dir is not None else minilm_model_dir()
    with quiet_transformers():
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
    return TextConditioner(tok, model, model.config.hidden_size, max_length=model.config.max_position_embeddings)


def resolve_t5(name: str, base_dir: str | Path | None = None) -> Path:
    """A local directory for T5 ``name``: ``name`` as a path, ``base_dir/name``, or the HF cache (also under the
    hub's current ``google-t5/`` namespace for the legacy ids such as ``t5-large``).

    Raises:
        SaraError: not found (one line).
    """
    try:
        return resolve_model_dir(name, base_dir)
    except SaraError:
        if "/" in name:
            raise
        try:
            return resolve_model_dir(f"google-t5/{name}")
        except SaraError:
            pass
        raise


def build_text_conditioner(spec: TextEncoderSpec | Mapping[str, str | None],
                           base_dir: str | Path | None = None) -> TextConditioner:
    """The conditioner a :class:`~sara.text.TextEncoderSpec` names (``"t5"``: a T5 directory or cached id,
    resolved against ``base_dir``; ``"minilm"``: the packaged MiniLM or ``path``)."""
    if not isinstance(spec, TextEncoderSpec):
        from sara.serialization import config_from_dict

        spec = config_from_dict(TextEncoderSpec, dict(spec))
    if spec.kind == "minilm":
        path = None if spec.path is None else resolve_model_dir(spec.path, base_dir)
        return _load_minilm(path)
    assert spec.path is not None
    return load_t5_conditioner(resolve_t5(spec.path, base_dir))
