"""Loading audiocraft's exported EnCodec package: strict load, lazy yaml resolution, clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from sara.codec import CodecConfig, EncodecCodec
from sara.codec.official import (
    LazyConfig,
    codec_config_from_xp,
    read_compression_package,
    save_audiocraft_codec,
)
from sara.errors import CheckpointError
from tests.codec.audiocraft_layout import (
    TinyEncodec,
    encodec_best_state,
    write_compression_package,
    xp_cfg_yaml,
)

TINY = TinyEncodec()


@pytest.fixture()
def package(tmp_path: Path) -> Path:
    return write_compression_package(tmp_path / "audiogen")


def test_loads_strictly_from_file_and_directory(package: Path) -> None:
    for source in (package, package.parent):
        codec = EncodecCodec.from_pretrained(source)
        expected = encodec_best_state(TINY)
        state = codec.state_dict()
        assert set(state) == set(expected)
        assert all(torch.equal(state[k], v) for k, v in expected.items())
        assert not codec.training


def test_rebuilds_the_architecture_from_xp_cfg(package: Path) -> None:
    cfg = EncodecCodec.from_pretrained(package).config
    assert (cfg.n_filters, cfg.ratios, cfg.dimension, cfg.lstm) == (TINY.n_filters, TINY.ratios, TINY.dimension, 1)
    assert (cfg.num_codebooks, cfg.bins, cfg.pad_mode, cfg.norm) == (TINY.n_q, TINY.bins, "constant", "weight_norm")
    assert (cfg.sample_rate, cfg.kmeans_iters, cfg.threshold_ema_dead_code, cfg.causal) == (16000, 50, 2.0, False)


def test_encode_decode_shapes_on_the_loaded_codec(package: Path) -> None:
    codec = EncodecCodec.from_pretrained(package)
    hop = math.prod(TINY.ratios)
    wav = torch.randn(2, 1, 10 * hop + 3)
    codes = codec.encode(wav)
    assert codes.shape == (2, TINY.n_q, 11) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < TINY.bins
    assert codec.decode_latent(codes).shape == (2, TINY.dimension, 11)
    assert codec.decode(codes).shape == (2, 1, 11 * hop)


def test_weight_norm_matches_torch_old_style_weight_norm(package: Path) -> None:
    """The loaded ``weight_g``/``weight_v`` act exactly as torch's (deprecated) weight_norm would."""
    codec = EncodecCodec.from_pretrained(package)
    ours = codec.encoder.model[0].conv.conv
    with pytest.warns(FutureWarning):
        ref = torch.nn.utils.weight_norm(nn.Conv1d(1, TINY.n_filters, 7))
    ref.load_state_dict(dict(ours.state_dict()))
    x = torch.randn(2, 1, 50)
    torch.testing.assert_close(ours(x), ref(x))


def test_encode_is_brute_force_residual_nearest_neighbour(package: Path) -> None:
    codec = EncodecCodec.from_pretrained(package)
    wav = torch.randn(1, 1, 64)
    with torch.no_grad():
        residual = codec.encoder(wav)[0].T  # [F, D]
    expected = []
    for k in range(TINY.n_q):
        embed = codec.state_dict()[f"quantizer.vq.layers.{k}._codebook.embed"]
        idx = torch.cdist(residual.double(), embed.double()).argmin(dim=1)
        expected.append(idx)
        residual = residual - embed[idx]
    assert torch.equal(codec.encode(wav)[0], torch.stack(expected))


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    state = encodec_best_state(TINY)
    del state["decoder.model.1.lstm.weight_hh_l0"]
    state["quantizer.vq.layers.9._codebook.embed"] = torch.zeros(1)
    path = write_compression_package(tmp_path, state=state)
    with pytest.raises(CheckpointError, match="decoder.model.1.lstm.weight_hh_l0") as err:
        EncodecCodec.from_pretrained(path)
    assert "quantizer.vq.layers.9._codebook.embed" in str(err.value) and "\n" not in str(err.value)


def test_bad_packages_give_one_line_errors(tmp_path: Path) -> None:
    cases = {
        "yaml": ("seanet: [unclosed", "not readable yaml"),
        "scalar": ("just a string", "not a yaml mapping"),
        "env": (xp_cfg_yaml(TINY).replace("n_filters: 4", "n_filters: ${oc.env:FILTERS}"), "seanet"),
        "ref": (xp_cfg_yaml(TINY).replace("channels: ${channels}\n  causal", "channels: ${nope}\n  causal"), "nope"),
        "renorm": (xp_cfg_yaml(TINY).replace("renormalize: false", "renormalize: true"), "renormalize"),
        "act": (xp_cfg_yaml(TINY).replace("activation: ELU", "activation: Tanh"), "activation"),
        "unknown": (xp_cfg_yaml(TINY).replace("  compress: 2\n", "  compress: 2\n  wobble: 3\n"), "wobble"),
    }
    for name, (cfg, message) in cases.items():
        path = write_compression_package(tmp_path / name, cfg=cfg)
        with pytest.raises(CheckpointError, match=message) as err:
            EncodecCodec.from_pretrained(path)
        assert "\n" not in str(err.value), name


def test_reference_package_and_missing_file(tmp_path: Path) -> None:
    torch.save({"pretrained": "facebook/encodec_32khz", "exported": True, "version": "1.3.0"},
               tmp_path / "compression_state_dict.bin")
    with pytest.raises(CheckpointError, match="encodec_32khz"):
        EncodecCodec.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="no such file"):
        EncodecCodec.from_pretrained(tmp_path / "elsewhere")


def test_lazy_config_resolves_only_what_is_read() -> None:
    cfg = LazyConfig({"a": 3, "b": {"c": "${a}", "d": "x${a}y", "e": "${b.c}"}, "env": "${oc.env:HOME}",
                      "loop": "${loop}", "q": "???"}, "test.yaml")
    assert cfg.get("b") == {"c": 3, "d": "x3y", "e": 3}
    assert cfg.get("zzz", 7) == 7
    for key, message in (("env", "resolvers"), ("loop", "cycle"), ("q", "mandatory"), ("zzz", "no key")):
        with pytest.raises(CheckpointError, match=message):
            cfg.get(key)


def test_missing_keys_take_audiocraft_constructor_defaults(tmp_path: Path) -> None:
    text = xp_cfg_yaml(TINY).replace("  pad_mode: constant\n", "").replace("  kmeans_iters: 50\n", "")
    path = write_compression_package(tmp_path, cfg=text)
    _, lazy = read_compression_package(path)
    cfg = codec_config_from_xp(lazy)
    assert cfg.pad_mode == "reflect" and cfg.kmeans_iters == 10  # SEANetEncoder / ResidualVectorQuantizer defaults


def test_sara_release_round_trip(tmp_path: Path) -> None:
    codec = EncodecCodec.from_pretrained(write_compression_package(tmp_path / "ac"))
    codec.save_pretrained(tmp_path / "release")
    again = EncodecCodec.from_pretrained(tmp_path / "release")
    assert again.config == codec.config and isinstance(again.config, CodecConfig)
    wav = torch.randn(1, 1, 80)
    assert torch.equal(again.encode(wav), codec.encode(wav))
    assert torch.equal(again.decode(codec.encode(wav)), codec.decode(codec.encode(wav)))


def test_save_audiocraft_codec_writes_the_official_packaging(tmp_path: Path) -> None:
    codec = EncodecCodec.from_pretrained(write_compression_package(tmp_path / "ac"))
    path = save_audiocraft_codec(codec, tmp_path / "out")
    assert path.name == "compression_state_dict.bin"
    pkg = torch.load(path, weights_only=True)
    assert set(pkg) == {"best_state", "xp.cfg", "version", "exported"} and pkg["exported"] is True
    reference = encodec_best_state(TINY)  # the layout as audiocraft names it
    assert {k: v.shape for k, v in pkg["best_state"].items()} == {k: v.shape for k, v in reference.items()}
    cfg = yaml.safe_load(pkg["xp.cfg"])
    # the keys of audiocraft's config/model/encodec/default.yaml that builders.get_compression_model reads
    assert set(cfg["seanet"]) == {
        "dimension", "channels", "causal", "n_filters", "n_residual_layers", "ratios", "activation",
        "activation_params", "norm", "norm_params", "kernel_size", "residual_kernel_size", "last_kernel_size",
        "dilation_base", "pad_mode", "true_skip", "compress", "lstm", "disable_norm_outer_blocks", "decoder",
        "encoder"}
    assert set(cfg["rvq"]) == {"n_q", "q_dropout", "bins", "decay", "kmeans_init", "kmeans_iters",
                               "threshold_ema_dead_code", "orthogonal_reg_weight",
                               "orthogonal_reg_active_codes_only"}
    assert cfg["compression_model"] == "encodec" and cfg["encodec"]["autoencoder"] == "seanet"
    again = EncodecCodec.from_pretrained(path)
    assert again.config == codec.config
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in codec.state_dict().items())
