"""Loading dasheng in the Hugging Face transformers layout of ``mispeech/dasheng-{base,0.6B,1.2B}``.

The fixture writes a hub-shaped directory the way the public conversion script
(jimbozhang/hf_transformers_custom_model_dasheng, ``utils/convert_dasheng_original_to_pytorch.py``) and
``DashengModel.save_pretrained`` do: the Zenodo state dict without ``front_end*`` keys, every key prefixed with
``encoder.``, ``config.json`` with ``model_type``/``architectures``/``auto_map``/``name``/``encoder_kwargs``,
``preprocessor_config.json`` of ``DashengFeatureExtractor`` and the repo's Python files (never run).
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sara.encoder import EncoderConfig, SemanticEncoder
from sara.encoder.hf_layout import is_hf_dasheng_dir, official_config_from_hf
from sara.errors import CheckpointError

from ._reference import official_config, official_state_dict, randomize_bn, save_official

TINY = EncoderConfig.tiny().replace(n_mels=64)  # 32 / 2 layers / 2 heads, official 64-bin front end
TINY_KWARGS = {"depth": 2, "embed_dim": 32, "num_heads": 2, "patch_size": [64, 4], "patch_stride": [64, 4],
               "target_length": 400}
# the preprocessor_config.json DashengFeatureExtractor.save_pretrained writes
PREPROCESSOR = {
    "auto_map": {"AutoFeatureExtractor": "feature_extraction_dasheng.DashengFeatureExtractor"},
    "center": True, "f_max": 8000, "f_min": 0, "feature_extractor_type": "DashengFeatureExtractor",
    "feature_size": 64, "hop_size": 160, "model_input_names": ["input_values"], "n_fft": 512,
    "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False, "sampling_rate": 16000,
    "win_size": 512,
}
# a booby trap: these files must never be imported
REMOTE_CODE = "raise RuntimeError('remote code was executed')\n"


def hf_config(name: str = "dasheng-base", **encoder_kwargs: object) -> dict:
    """config.json as ``DashengModel.save_pretrained`` writes it (with the hub repos' ``auto_map``)."""
    return {
        "architectures": ["DashengModel"],
        "auto_map": {"AutoConfig": "configuration_dasheng.DashengConfig", "AutoModel": "modeling_dasheng.DashengModel"},
        "encoder_kwargs": encoder_kwargs, "loss": "BCELoss", "model_type": "dasheng", "name": name,
        "torch_dtype": "float32", "transformers_version": "4.38.2",
    }


def hf_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The conversion script's mapping: drop ``front_end*``, prefix ``encoder.``."""
    sd = official_state_dict(model)
    return {f"encoder.{k}": v.contiguous() for k, v in sd.items() if not k.startswith("front_end")}


def write_hf_dir(directory: Path, sd: dict[str, torch.Tensor], config: dict, *, weights: str = "model.safetensors") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (directory / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2, sort_keys=True) + "\n")
    for name in ("configuration_dasheng.py", "modeling_dasheng.py", "feature_extraction_dasheng.py"):
        (directory / name).write_text(REMOTE_CODE)
    if weights == "model.safetensors":
        save_file(sd, str(directory / weights), metadata={"format": "pt"})
    else:
        torch.save(sd, directory / weights)
    return directory


@pytest.fixture(scope="module")
def source() -> SemanticEncoder:
    torch.manual_seed(0)
    enc = SemanticEncoder(TINY).eval()
    randomize_bn(enc)
    return enc


@pytest.fixture(scope="module")
def wav() -> torch.Tensor:
    return torch.randn(2, 40000, generator=torch.Generator().manual_seed(1)) * 0.1  # 2.5 s at 16 kHz


@pytest.fixture(scope="module")
def pt_latents(source: SemanticEncoder, wav: torch.Tensor, tmp_path_factory: pytest.TempPathFactory) -> torch.Tensor:
    """Latents of the same weights loaded from the Zenodo ``.pt`` layout."""
    config = official_config(embed_dim=32, depth=2, num_heads=2, target_length=400)
    pt = save_official(tmp_path_factory.mktemp("zenodo") / "dasheng_tiny.pt", source, config)
    return SemanticEncoder.from_pretrained(pt).encode(wav, 16000)


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_hf_dir_equals_zenodo_checkpoint(source: SemanticEncoder, wav: torch.Tensor, pt_latents: torch.Tensor,
                                         tmp_path: Path, weights: str) -> None:
    d = write_hf_dir(tmp_path / "dasheng-tiny", hf_state_dict(source), hf_config(**TINY_KWARGS), weights=weights)
    assert is_hf_dasheng_dir(d)
    enc = SemanticEncoder.from_pretrained(d)
    assert enc.config == TINY
    for key, value in source.state_dict().items():
        assert torch.equal(enc.state_dict()[key], value), key
    assert torch.equal(enc.encode(wav, 16000), pt_latents)
    assert torch.equal(SemanticEncoder.from_pretrained(d / weights).encode(wav, 16000), pt_latents)


def test_sharded_safetensors(source: SemanticEncoder, wav: torch.Tensor, pt_latents: torch.Tensor, tmp_path: Path) -> None:
    sd = hf_state_dict(source)
    d = write_hf_dir(tmp_path / "sharded", {}, hf_config(**TINY_KWARGS))
    (d / "model.safetensors").unlink()
    keys = sorted(sd)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2], "model-00002-of-00002.safetensors": keys[len(keys) // 2 :]}
    for name, part in shards.items():
        save_file({k: sd[k] for k in part}, str(d / name), metadata={"format": "pt"})
    index = {"metadata": {"total_size": 0}, "weight_map": {k: n for n, part in shards.items() for k in part}}
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    assert torch.equal(SemanticEncoder.from_pretrained(d).encode(wav, 16000), pt_latents)
    assert torch.equal(SemanticEncoder.from_pretrained(d / "model-00002-of-00002.safetensors").encode(wav, 16000), pt_latents)


def test_finetuned_classifier_head_is_ignored(source: SemanticEncoder, pt_latents: torch.Tensor, wav: torch.Tensor,
                                              tmp_path: Path) -> None:
    sd = hf_state_dict(source)
    sd["outputlayer.0.weight"], sd["outputlayer.1.weight"] = torch.ones(32), torch.zeros(10, 32)
    d = write_hf_dir(tmp_path / "finetuned", sd, hf_config(**TINY_KWARGS))
    assert torch.equal(SemanticEncoder.from_pretrained(d).encode(wav, 16000), pt_latents)


def test_missing_keys_give_one_line_error(source: SemanticEncoder, tmp_path: Path) -> None:
    sd = hf_state_dict(source)
    del sd["encoder.blocks.1.mlp.fc2.bias"]
    d = write_hf_dir(tmp_path / "missing", sd, hf_config(**TINY_KWARGS))
    with pytest.raises(CheckpointError, match=r"missing keys \[blocks\.1\.mlp\.fc2\.bias\]") as err:
        SemanticEncoder.from_pretrained(d)
    assert "\n" not in str(err.value) and "transformers layout" in str(err.value)


def test_unprefixed_or_unknown_keys_give_one_line_error(source: SemanticEncoder, tmp_path: Path) -> None:
    sd = hf_state_dict(source)
    sd["mystery.weight"] = torch.zeros(1)
    d = write_hf_dir(tmp_path / "unknown", sd, hf_config(**TINY_KWARGS))
    with pytest.raises(CheckpointError, match=r"unexpected keys \[mystery\.weight\]") as err:
        SemanticEncoder.from_pretrained(d)
    assert "\n" not in str(err.value)
    renamed = {k.replace("encoder.norm.", "encoder.fc_norm."): v for k, v in hf_state_dict(source).items()}
    d2 = write_hf_dir(tmp_path / "renamed", renamed, hf_config(**TINY_KWARGS))
    with pytest.raises(CheckpointError, match=r"missing keys \[norm\.bias, norm\.weight\].*unexpected keys \[fc_norm\.") as err:
        SemanticEncoder.from_pretrained(d2)
    assert "\n" not in str(err.value)


def test_size_mismatch_with_config_and_missing_weights(source: SemanticEncoder, tmp_path: Path) -> None:
    d = write_hf_dir(tmp_path / "wrong", hf_state_dict(source), hf_config(**dict(TINY_KWARGS, depth=12)))
    with pytest.raises(CheckpointError, match="config says depth=12"):
        SemanticEncoder.from_pretrained(d)
    (d / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors / pytorch_model.bin"):
        SemanticEncoder.from_pretrained(d)


def test_hub_config_maps_onto_official_kwargs() -> None:
    """The three hub configs: sizes from the ``name`` preset and ``encoder_kwargs``, front end from the
    preprocessor config; a nested ``encoder_kwargs`` and transformers bookkeeping (left by re-saving a loaded
    DashengConfig) are tolerated."""
    sizes = {"dasheng-base": (768, 12, 12), "dasheng-0.6B": (1280, 32, 16), "dasheng-1.2B": (1536, 40, 24)}
    for name, (dim, depth, heads) in sizes.items():
        kwargs = {"embed_dim": dim, "depth": depth, "num_heads": heads, "patch_size": [64, 4],
                  "patch_stride": [64, 4], "target_length": 1008}
        for cfg in (hf_config(name, **kwargs), hf_config(name), hf_config(name, encoder_kwargs=kwargs, torch_dtype="float32")):
            got = official_config_from_hf(cfg, PREPROCESSOR, "test")
            assert {k: got[k] for k in kwargs} == kwargs, (name, cfg)
            assert (got["n_mels"], got["hop_size"], got["n_fft"], got["f_max"]) == (64, 160, 512, 8000)
    with pytest.raises(CheckpointError, match="sampling_rate=22050"):
        official_config_from_hf(hf_config(), dict(PREPROCESSOR, sampling_rate=22050), "test")
    with pytest.raises(CheckpointError, match="init_bn=False"):
        official_config_from_hf(hf_config(init_bn=False), None, "test")


def test_detection(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    assert not is_hf_dasheng_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "modeling_dasheng.DashengModel"}}))
    assert is_hf_dasheng_dir(tmp_path)
    (tmp_path / "config.json").write_text("not json")
    assert not is_hf_dasheng_dir(tmp_path)
