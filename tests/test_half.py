"""sara.half: float16 storage keeps what float16 cannot hold and loads back into float32 models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from sara.errors import CheckpointError
from sara.half import store_half


def test_store_half_converts_weights_and_keeps_unsafe_tensors(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    state = {"w": torch.randn(64, 64), "big": torch.full((4,), 1e6), "tiny": torch.full((4,), 1e-9),
             "steps": torch.arange(5), "zeros": torch.zeros(3)}
    save_file(state, str(tmp_path / "sub" / "model.safetensors"))
    rep = store_half(tmp_path)
    out = load_file(str(tmp_path / "sub" / "model.safetensors"))
    assert out["w"].dtype == torch.float16 and out["zeros"].dtype == torch.float16
    assert out["big"].dtype == torch.float32 and out["tiny"].dtype == torch.float32
    assert out["steps"].dtype == torch.int64
    assert torch.allclose(out["w"].float(), state["w"], atol=2e-3)
    assert rep.files == 1 and rep.bytes_after < rep.bytes_before
    assert set(rep.kept_float32) == {"sub/big", "sub/tiny"}
    layer = torch.nn.Linear(64, 64, bias=False)
    layer.load_state_dict({"weight": out["w"]})
    assert layer.weight.dtype == torch.float32


def test_store_half_needs_weights(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        store_half(tmp_path)
