"""FLAN-T5 encoder (``T5EncoderModel``), as used by the official SemanticVocoder text-to-audio model.

The official code builds the encoder from ``T5Config`` only (random init) and takes the weights from its
own checkpoint (``model.content_encoder.text_encoder.model.*``); the tokenizer comes from the
``model_name`` directory, looked up locally (absolute, or relative to ``base_dir``), then in the user's
Hugging Face cache, then downloaded from the hub unless ``HF_HUB_OFFLINE`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor

from sara.errors import CheckpointError, SaraError
from sara.text.base import HFTextEncoder, quiet_transformers

__all__ = ["T5TextEncoder", "resolve_model_dir"]

# HF keeps one copy of the tied input embedding; either name may be missing from a saved state dict.
_TIED = ("shared.weight", "encoder.embed_tokens.weight")


def resolve_model_dir(name: str, base_dir: str | Path | None = None) -> Path:
    """Find a model directory for ``name``.

    Order: ``name`` as a path (absolute, or relative to the cwd), ``base_dir / name``, the HF cache snapshot of
    the repo id ``name``, then (unless ``HF_HUB_OFFLINE`` is set) a download of that repo through
    :func:`sara.hub.resolve`.

    Raises:
        SaraError: nothing found (one line naming what was tried).
    """
    candidates = [Path(name).expanduser()]
    if base_dir is not None and not Path(name).is_absolute():
        candidates.insert(0, Path(base_dir) / name)
    for cand in candidates:
        if (cand / "config.json").is_file():
            return cand
    cached = _hf_cache_dir(name)
    if cached is not None:
        return cached
    from sara.hub import is_hub_id, offline, resolve

    if is_hub_id(name) and not offline():
        return resolve(name)  # download the repo (one-line SaraError on failure)
    tried = ", ".join(str(c) for c in candidates)
    raise SaraError(f"text encoder {name!r} not found locally ({tried}) nor in the Hugging Face cache; "
                    f"download it once with `huggingface-cli download {name}` or pass a local directory")


def _hf_cache_dir(repo_id: str) -> Path | None:
    """The cached snapshot directory of ``repo_id`` (``None`` if absent or not a valid repo id)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        path = Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError, OSError, ValueError):
        return None
    return path if (path / "config.json").is_file() else None


class T5TextEncoder(HFTextEncoder):
    """FLAN-T5 encoder states ``last_hidden_state`` (after the final RMS norm): ``dim == d_model``.

    Args:
        model_dir: directory with ``config.json`` and tokenizer files (and weights unless ``state_dict``).
        state_dict: encoder weights (``T5EncoderModel`` keys, e.g. the official checkpoint's
            ``model.content_encoder.text_encoder.model.*`` with the prefix stripped).  When None, the
            weights are read from ``model_dir``.
    """

    def __init__(self, model_dir: str | Path, state_dict: Mapping[str, Tensor] | None = None) -> None:
        path = Path(model_dir)
        with quiet_transformers():
            tokenizer, model = _load(path, state_dict)
        super().__init__(tokenizer, model, dim=model.config.d_model)


def _load(path: Path, state_dict: Mapping[str, Tensor] | None):  # noqa: ANN202 - (tokenizer, model)
    """Tokenizer + ``T5EncoderModel`` from ``path`` (weights from ``state_dict`` when given)."""
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, ImportError) as exc:
        raise SaraError(f"{path}: cannot load the T5 tokenizer ({str(exc).splitlines()[0]})") from None
    if state_dict is None:
        try:
            model = T5EncoderModel.from_pretrained(str(path), local_files_only=True)
        except OSError as exc:
            raise CheckpointError(f"{path}: no T5 encoder weights ({str(exc).splitlines()[0]})") from None
    else:
        model = T5EncoderModel(T5Config.from_pretrained(str(path), local_files_only=True))
        _load_t5_weights(model, state_dict, source=str(path))
    return tokenizer, model


def _load_t5_weights(model, state_dict: Mapping[str, Tensor], *, source: str) -> None:
    """Strictly load T5 encoder weights, filling in whichever tied embedding name is absent."""
    state = dict(state_dict)
    present = [k for k in _TIED if k in state]
    if present:
        for key in _TIED:
            state.setdefault(key, state[present[0]])
    expected = set(model.state_dict())
    state = {k: v for k, v in state.items() if k in expected or k not in _TIED}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(f"{source}: T5 weights do not match its config: missing {missing[:4]}, "
                              f"unexpected {unexpected[:4]}")
    model.load_state_dict(state, strict=True)
