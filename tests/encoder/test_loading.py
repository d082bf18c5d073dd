"""Loading official dasheng checkpoints (Zenodo layout, AudioSet plain state dict, vocoder-embedded) strictly."""

from pathlib import Path

import numpy as np
import pytest
import torch

from sara.encoder import EncoderConfig, SemanticEncoder
from sara.errors import CheckpointError
from sara.serialization import load_torch_checkpoint, strip_prefix

from ._reference import official_config, official_state_dict, randomize_bn, reference_forward, save_official

SHALLOW_BASE = EncoderConfig.base().replace(depth=2)  # official key shapes, fast


@pytest.fixture(scope="module")
def source() -> SemanticEncoder:
    torch.manual_seed(0)
    enc = SemanticEncoder(SHALLOW_BASE).eval()
    randomize_bn(enc)
    return enc


@pytest.fixture(scope="module")
def official_pt(source: SemanticEncoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_official(tmp_path_factory.mktemp("dasheng") / "dasheng_base.pt", source, official_config(depth=2))


def test_official_file_is_read_without_code_execution(official_pt: Path) -> None:
    ckpt = load_torch_checkpoint(official_pt)  # weights_only, functools.partial(nn.LayerNorm) allow-listed
    assert ckpt["config"]["norm_layer"].keywords == {"eps": 1e-6}
    assert ckpt["model"]["front_end.0.mel_scale.fb"].shape == (257, 64)


def test_official_checkpoint_loads_strictly(official_pt: Path, source: SemanticEncoder) -> None:
    enc = SemanticEncoder.from_pretrained(official_pt)
    assert enc.config == SHALLOW_BASE
    for key, value in source.state_dict().items():
        assert torch.equal(enc.state_dict()[key], value), key
    z10 = enc.encode(torch.randn(1, 160000) * 0.1, 16000)
    z125 = enc.encode(torch.randn(1, 200000) * 0.1, 16000)
    assert z10.shape == (1, 768, 250) and z125.shape == (1, 768, 312)


def test_directory_holding_the_file(official_pt: Path) -> None:
    assert SemanticEncoder.from_pretrained(official_pt.parent).latent_dim == 768


def test_audioset_plain_state_dict_ignores_classifier(source: SemanticEncoder, tmp_path: Path) -> None:
    sd = official_state_dict(source)
    sd["outputlayer.0.weight"], sd["outputlayer.1.weight"] = torch.ones(768), torch.zeros(527, 768)
    torch.save(sd, tmp_path / "dasheng_audioset_mAP497.pt")
    enc = SemanticEncoder.from_pretrained(tmp_path / "dasheng_audioset_mAP497.pt")
    assert enc.config == SHALLOW_BASE  # inferred from shapes
    wav = torch.randn(1, 32000) * 0.1
    torch.testing.assert_close(enc.encode(wav, 16000), source.encode(wav, 16000), rtol=0, atol=0)


def test_vocoder_embedded_state_dict(source: SemanticEncoder) -> None:
    full = {f"cond_module.dasheng_model.{k}": v for k, v in official_state_dict(source).items()}
    full["generator.x.weight"] = torch.zeros(1)
    enc = SemanticEncoder.from_official_state_dict(strip_prefix(full, "cond_module.dasheng_model."))
    assert enc.config == SHALLOW_BASE


def test_missing_and_unexpected_keys_are_named(source: SemanticEncoder) -> None:
    sd = official_state_dict(source)
    del sd["blocks.1.mlp.fc2.bias"]
    sd["blocks.1.mystery"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing keys \[blocks\.1\.mlp\.fc2\.bias\].*unexpected keys \[blocks\.1\.mystery\]"):
        SemanticEncoder.from_official_state_dict(sd, SHALLOW_BASE)


def test_unknown_layouts_are_rejected(source: SemanticEncoder, tmp_path: Path) -> None:
    sd = official_state_dict(source)
    with pytest.raises(CheckpointError, match="block_type"):
        SemanticEncoder.from_official_state_dict(sd, official_config(depth=2, block_type="RetBlock"))
    with pytest.raises(CheckpointError, match="config says depth=12"):
        SemanticEncoder.from_official_state_dict(sd, official_config(depth=12))
    bad_fb = dict(sd, **{"front_end.0.mel_scale.fb": sd["front_end.0.mel_scale.fb"] * 2})
    with pytest.raises(CheckpointError, match="mel_scale.fb differs"):
        SemanticEncoder.from_official_state_dict(bad_fb, SHALLOW_BASE)
    with pytest.raises(CheckpointError, match="missing keys"):
        SemanticEncoder.from_official_state_dict({"foo": torch.zeros(1)})
    torch.save({"model": [1, 2]}, tmp_path / "weird.pt")
    with pytest.raises(CheckpointError, match="not a dasheng checkpoint"):
        SemanticEncoder.from_pretrained(tmp_path / "weird.pt")
    with pytest.raises(CheckpointError, match="no such"):
        SemanticEncoder.from_pretrained(tmp_path / "nope.pt")


def test_layer_scale_and_eps_from_official_config() -> None:
    cfg = EncoderConfig.tiny().replace(n_mels=64, init_values=0.5, ln_eps=1e-5)
    enc = SemanticEncoder(cfg)
    official = official_config(embed_dim=32, depth=2, num_heads=2, target_length=400, init_values=0.5)
    official["norm_layer"] = torch.nn.LayerNorm
    loaded = SemanticEncoder.from_official_state_dict(official_state_dict(enc), official)
    assert loaded.config == cfg


def test_shorter_position_table_is_interpolated(source: SemanticEncoder) -> None:
    sd = official_state_dict(source)
    sd["time_pos_embed"] = sd["time_pos_embed"][..., :126]
    enc = SemanticEncoder.from_official_state_dict(sd, SHALLOW_BASE)
    assert enc.time_pos_embed.shape == (1, 768, 1, 252)


def test_forward_matches_spec_reference_on_official_weights(official_pt: Path) -> None:
    """Latents equal an independent float64 implementation of spec A.1-A.4 (two chunks, batch of two)."""
    enc = SemanticEncoder.from_pretrained(official_pt)
    g = torch.Generator().manual_seed(5)
    wav = torch.randn(2, 200000, generator=g) * torch.tensor([[0.3], [1e-4]])  # 12.5 s
    wav[1, 100000:] = 0.0  # digital silence in the quiet item: the batch-wide top_db floor clamps it
    ref = reference_forward(load_torch_checkpoint(official_pt)["model"], wav.double().numpy(), num_heads=12)
    z = enc.encode(wav, 16000)
    assert z.shape == (2, 768, 312)
    np.testing.assert_allclose(z.transpose(1, 2).double().numpy(), ref, atol=5e-5, rtol=1e-5)
    per_item = enc.encode(wav, 16000, db_scope="item").transpose(1, 2).double().numpy()
    assert np.abs(per_item - ref).max() > 1e-2  # the quirk is really exercised
