"""Text encoders: the packaged MiniLM (offline), padding semantics, model-dir resolution, specs."""

from __future__ import annotations

import pytest
import torch

from sara.errors import ConfigError, SaraError
from sara.text import MiniLMTextEncoder, TextEncoderSpec, build_text_encoder, resolve_model_dir
from sara.text.base import pad_states

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def minilm() -> MiniLMTextEncoder:
    return MiniLMTextEncoder()


def test_minilm_token_states_and_mask(minilm: MiniLMTextEncoder) -> None:
    assert minilm.dim == 384
    prompts = ["a dog barks", "heavy rain falls on a metal roof while thunder rumbles"]
    states, mask = minilm.encode(prompts)
    assert states.shape[0] == 2 and states.shape[2] == 384 and states.dtype == torch.float32
    assert mask.dtype == torch.bool and mask[1].all() and not mask[0].all()
    short = int(mask[0].sum())
    assert (states[0, short:] == 0).all()
    # per-caption encoding: the batch result equals encoding each caption alone
    alone, alone_mask = minilm.encode(prompts[:1])
    assert alone_mask.all() and alone.shape[1] == short
    assert torch.allclose(states[0, :short], alone[0], atol=1e-5)
    # different captions give different states
    assert not torch.allclose(states[0, 1], states[1, 1], atol=1e-3)
    assert not any(p.requires_grad for p in minilm.parameters())


def test_minilm_rejects_empty_prompts(minilm: MiniLMTextEncoder) -> None:
    with pytest.raises(SaraError):
        minilm.encode(["  "])
    with pytest.raises(SaraError):
        minilm.encode([])
    with pytest.raises(TypeError):
        minilm.encode("a string, not a list")


def test_pad_states() -> None:
    out, mask = pad_states([torch.ones(2, 3), torch.ones(4, 3)])
    assert out.shape == (2, 4, 3) and mask.tolist() == [[True, True, False, False], [True] * 4]
    assert (out[0, 2:] == 0).all()


def test_resolve_model_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text("{}")
    assert resolve_model_dir("t5", base_dir=tmp_path) == tmp_path / "t5"
    assert resolve_model_dir(str(tmp_path / "t5")) == tmp_path / "t5"
    with pytest.raises(SaraError, match="not found locally"):
        resolve_model_dir("google/flan-t5-nonexistent-xyz", base_dir=tmp_path)


def test_spec_validation() -> None:
    with pytest.raises(ConfigError):
        build_text_encoder({"kind": "bert"})
    with pytest.raises(ConfigError):
        build_text_encoder({"kind": "t5"})
    with pytest.raises(ConfigError):
        build_text_encoder({"kind": "minilm", "extra": 1})
    assert TextEncoderSpec().kind == "minilm"
