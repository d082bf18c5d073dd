"""audiocraft ``state_dict.bin`` loading on packages written in the official layout (audiocraft_lm_layout.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sara.audiogen.official import load_audiocraft_lm, read_audiocraft_lm
from sara.errors import CheckpointError
from tests.audiogen.audiocraft_lm_layout import best_state, write_audiocraft_lm, xp_cfg


def test_reads_config_from_xp_cfg(tmp_path: Path) -> None:
    package = read_audiocraft_lm(write_audiocraft_lm(tmp_path))
    c = package.config
    assert (c.dim, c.num_heads, c.num_layers, c.n_q, c.card, c.text_dim) == (16, 2, 2, 4, 32, 1024)
    assert c.delays == (0, 1, 2, 3) and c.ffn_dim == 64
    assert (c.cfg_coef, c.cfg_dropout) == (3.0, 0.1)
    assert not (c.bias_ff or c.bias_attn or c.bias_proj)
    assert package.t5_name == "t5-large" and package.version == "1.3.0"


def test_loads_strictly_with_the_same_weights(tmp_path: Path) -> None:
    path = write_audiocraft_lm(tmp_path)
    lm, t5_name = load_audiocraft_lm(tmp_path)
    saved = torch.load(path, weights_only=True)["best_state"]
    assert set(lm.state_dict()) == set(saved) and t5_name == "t5-large"
    for key, value in lm.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_accepts_nn_multihead_attention_names(tmp_path: Path) -> None:
    state = {k.replace(".self_attn.", ".self_attn.mha."): v for k, v in best_state(16, 2, 32, 1024).items()}
    lm, _ = load_audiocraft_lm(write_audiocraft_lm(tmp_path, state=state))
    assert torch.equal(lm.transformer.layers[0].self_attn.in_proj_weight,
                       state["transformer.layers.0.self_attn.mha.in_proj_weight"])


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    state = best_state(16, 2, 32, 1024)
    state.pop("transformer.layers.1.norm_cross.weight")
    state["transformer.layers.0.layer_scale_1.scale"] = torch.zeros(16)
    write_audiocraft_lm(tmp_path, state=state)
    with pytest.raises(CheckpointError) as err:
        load_audiocraft_lm(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg
    assert "transformer.layers.1.norm_cross.weight" in msg and "layer_scale_1.scale" in msg


def test_shape_mismatch_is_one_line(tmp_path: Path) -> None:
    write_audiocraft_lm(tmp_path, state=best_state(16, 2, 40, 1024))  # card 40 weights, cfg says 32
    with pytest.raises(CheckpointError, match="emb.0.weight") as err:
        load_audiocraft_lm(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("edit", "key"), [
    (("positional_embedding: sin", "positional_embedding: rope"), "transformer_lm.positional_embedding"),
    (("norm_first: true", "norm_first: false"), "transformer_lm.norm_first"),
    (("  modeling: delay", "  modeling: parallel"), "codebooks_pattern.modeling"),
    (("  prepend: []", "  prepend:\n  - description"), "fuser.prepend"),
    (("name: t5-large", "name: t5-huge"), "t5-huge"),
])
def test_unsupported_configs_are_refused_by_name(tmp_path: Path, edit: tuple[str, str], key: str) -> None:
    cfg = xp_cfg(16, 2, 2, 32, "t5-large").replace(*edit)
    write_audiocraft_lm(tmp_path, cfg=cfg)
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        read_audiocraft_lm(tmp_path)


def test_unresolvable_interpolation_in_a_needed_key(tmp_path: Path) -> None:
    cfg = xp_cfg(16, 2, 2, 32, "t5-large").replace("  dim: 16", "  dim: ${oc.env:LM_DIM}")
    write_audiocraft_lm(tmp_path, cfg=cfg)
    with pytest.raises(CheckpointError, match="transformer_lm.dim"):
        read_audiocraft_lm(tmp_path)


def test_not_an_audiocraft_package(tmp_path: Path) -> None:
    torch.save(best_state(16, 2, 32, 1024), tmp_path / "state_dict.bin")
    with pytest.raises(CheckpointError, match="best_state"):
        read_audiocraft_lm(tmp_path)
    (tmp_path / "state_dict.bin").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="state_dict.bin"):
        read_audiocraft_lm(tmp_path)
