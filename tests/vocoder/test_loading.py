"""Official checkpoints (dir / .pt / prefixes / shape inference), release round trips, encoder resolution."""

import dataclasses
import json

import pytest
import torch

from sara.errors import CheckpointError
from sara.vocoder import SemanticVocoder, VocoderConfig
from sara.vocoder.loading import infer_config

from .helpers import official_state_dict, randomize, tiny_config, tiny_encoder, write_official


def test_official_paper_checkpoint_decodes_10_seconds(tmp_path) -> None:  # noqa: ANN001
    cfg = VocoderConfig.paper()
    write_official(tmp_path / "official", cfg)
    voc = SemanticVocoder.from_pretrained(tmp_path / "official")
    assert voc.config == cfg and voc.sample_rate == 24000 and voc.frame_rate == 25.0
    expected = official_state_dict(cfg)
    got = voc.generator.state_dict()
    assert set(got) <= set(expected)
    assert torch.equal(got["estimators.2.decoder.blocks.7.pwconv2.weight"],
                       expected["estimators.2.decoder.blocks.7.pwconv2.weight"])
    wav = voc.decode(torch.randn(1, 768, 250), steps=1, seed=0)
    assert wav.shape == (1, 240000)
    assert torch.isfinite(wav).all() and wav.abs().max() <= 1.0


@pytest.mark.parametrize("prefix", ["", "module.", "model.autoencoder.generator."])
def test_bare_pt_infers_config_from_shapes(tmp_path, prefix: str) -> None:  # noqa: ANN001
    cfg = tiny_config(hidden_factor=2, kernel_sizes=(5, 3), num_layers=(2, 1))
    pt = write_official(tmp_path, cfg, with_config=False, prefix=prefix)
    voc = SemanticVocoder.from_pretrained(pt)
    assert voc.config == dataclasses.replace(cfg, default_steps=200)  # 200 = official n_timesteps default
    assert voc.config.hop_lengths == tuple(n // 2 for n in cfg.n_ffts)


def test_hydra_config_supplies_hops_and_steps(tmp_path) -> None:  # noqa: ANN001
    cfg = tiny_config(hop_lengths=(120, 60))  # not n_fft / 2: only config.json can tell
    write_official(tmp_path, cfg)
    voc = SemanticVocoder.from_pretrained(tmp_path)
    assert voc.config.hop_lengths == (120, 60)
    assert voc.config.default_steps == 200 and voc.config.clamp
    assert voc.decode(torch.randn(1, cfg.latent_dim, 2), steps=2, seed=0).shape == (1, 1920)


def test_infer_config_rejects_hops_that_do_not_divide_960() -> None:
    cfg = tiny_config(n_ffts=(480, 240), hop_lengths=(240, 120))
    state = official_state_dict(cfg)
    assert infer_config(state).n_ffts == (480, 240)
    bad = {k.replace("estimators.1.", "estimators.9."): v for k, v in state.items()}
    with pytest.raises(CheckpointError):
        infer_config({k: v for k, v in bad.items() if "estimators.0." not in k})
    state["estimators.0.decoder.in_proj.weight"] = torch.zeros(32, 514, 1)  # n_fft 512 -> hop 256
    with pytest.raises(CheckpointError, match="does not divide"):
        infer_config(state)


def test_wrong_layouts_fail_in_one_line(tmp_path) -> None:  # noqa: ANN001
    cfg = tiny_config()
    state = official_state_dict(cfg)
    del state["estimators.1.decoder.blocks.0.pwconv2.bias"]
    torch.save({"model": state}, tmp_path / "semanticVocoder_epoch-270.pt")
    with pytest.raises(CheckpointError, match="missing keys") as err:
        SemanticVocoder.from_pretrained(tmp_path)
    assert "\n" not in str(err.value)
    state = official_state_dict(cfg)
    state["estimators.0.fft.window"] = torch.ones(480)
    torch.save({"model": state}, tmp_path / "semanticVocoder_epoch-270.pt")
    with pytest.raises(CheckpointError, match="window"):
        SemanticVocoder.from_pretrained(tmp_path)
    torch.save({"model": {"foo": torch.zeros(1)}}, tmp_path / "semanticVocoder_epoch-270.pt")
    with pytest.raises(CheckpointError, match="not a SemanticVocoder"):
        SemanticVocoder.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="no such"):
        SemanticVocoder.from_pretrained(tmp_path / "missing")


def test_release_round_trip(tmp_path) -> None:  # noqa: ANN001
    voc = SemanticVocoder(tiny_config())
    randomize(voc.generator, seed=3)
    voc.save_pretrained(tmp_path / "rel")
    payload = json.loads((tmp_path / "rel" / "config.json").read_text())
    assert payload["class"] == "SemanticVocoder" and payload["config"]["n_ffts"] == [480, 240]
    again = SemanticVocoder.from_pretrained(tmp_path / "rel")
    assert again.config == voc.config
    z = torch.randn(1, voc.latent_dim, 3)
    torch.testing.assert_close(again.decode(z, steps=2, seed=1), voc.decode(z, steps=2, seed=1))
    assert not (tmp_path / "rel" / "encoder").exists()
    with pytest.raises(CheckpointError, match="encoder"):
        again.reconstruct(torch.randn(1, 24000), 24000)


def test_release_with_bundled_encoder_reconstructs(tmp_path) -> None:  # noqa: ANN001
    voc = SemanticVocoder(tiny_config(), encoder=tiny_encoder())
    voc.save_pretrained(tmp_path / "rel")
    assert (tmp_path / "rel" / "encoder" / "model.safetensors").is_file()
    again = SemanticVocoder.from_pretrained(tmp_path / "rel")
    wav = torch.randn(2, 44100)
    out = again.reconstruct(wav, 44100, steps=2, seed=0)
    assert out.shape == (2, 24000)
    torch.testing.assert_close(out, voc.reconstruct(wav, 44100, steps=2, seed=0))
    odd = again.reconstruct(torch.randn(1, 2, 12345), 22050, steps=1)
    assert odd.shape == (1, round(12345 * 24000 / 22050))


def test_official_encoder_name_resolution(tmp_path) -> None:  # noqa: ANN001
    write_official(tmp_path, tiny_config(), encoder_name="dasheng_base")
    voc = SemanticVocoder.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="dasheng_base"):
        voc.reconstruct(torch.randn(1, 16000), 16000, steps=1)
    tiny_encoder().save_pretrained(tmp_path / "dasheng_base")  # weights found next to the checkpoint
    voc = SemanticVocoder.from_pretrained(tmp_path)
    assert voc.reconstruct(torch.randn(1, 16000), 16000, steps=1).shape == (1, 24000)
    explicit = SemanticVocoder.from_pretrained(tmp_path / "semanticVocoder_epoch-270.pt", encoder=tiny_encoder())
    assert explicit.encoder is not None


def test_encoder_dimension_mismatch_is_reported() -> None:
    voc = SemanticVocoder(VocoderConfig.tiny())  # 768-d latents
    with pytest.raises(CheckpointError, match="768"):
        voc.set_encoder(tiny_encoder())


def test_decode_matches_plain_reference_of_official_inference(tmp_path) -> None:  # noqa: ANN001
    from . import _reference

    cfg = tiny_config(num_layers=(2, 1), hop_lengths=(240, 120))
    write_official(tmp_path, cfg)
    state = torch.load(tmp_path / "semanticVocoder_epoch-270.pt", weights_only=True)["model"]
    voc = SemanticVocoder.from_pretrained(tmp_path)
    z, noise = torch.randn(2, cfg.latent_dim, 4), torch.randn(2, 4 * 960)
    with torch.no_grad():
        ref = _reference.decode(state, z, 0.1 * noise, 5, cfg.hop_lengths)
    torch.testing.assert_close(voc.decode(z, steps=5, noise=noise), ref, atol=1e-5, rtol=1e-4)


class TrainingParams(dict):
    """Like icefall's AttributeDict, which Flow2GAN checkpoints pickle as ``params``."""


class Exploit:
    def __reduce__(self):  # noqa: ANN204
        import os

        return (os.system, ("touch exploited-by-pickle",))


def test_checkpoint_with_custom_classes_loads_without_running_code(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import pathlib

    monkeypatch.chdir(tmp_path)
    cfg = tiny_config()
    params = TrainingParams(exp_dir=pathlib.Path("exp/semanticvocoder"), base_lr=0.035)
    torch.save({"model": official_state_dict(cfg), "params": params, "evil": Exploit()},
               tmp_path / "semanticVocoder_epoch-270.pt")
    voc = SemanticVocoder.from_pretrained(tmp_path)
    assert voc.config.n_ffts == cfg.n_ffts
    assert not (tmp_path / "exploited-by-pickle").exists()


def test_top_level_exports() -> None:
    import sara

    assert sara.SemanticVocoder is SemanticVocoder and sara.VocoderConfig is VocoderConfig


def test_reconstruct_long_input_uses_blockwise_encoding(monkeypatch) -> None:  # noqa: ANN001
    import sara.vocoder.vocoder as vmod

    enc = tiny_encoder()
    voc = SemanticVocoder(tiny_config(), encoder=enc)
    wav = torch.randn(1, 16000 * 2)
    short = voc.reconstruct(wav, 16000, steps=1, seed=0)
    monkeypatch.setattr(vmod, "LONG_SECONDS", 1.0)
    calls = []
    monkeypatch.setattr(enc, "encode_long", lambda w, sr: calls.append(w.shape) or enc.encode(w[None], sr)[0])
    long = voc.reconstruct(wav, 16000, steps=1, seed=0)
    assert calls == [torch.Size([32000])]
    torch.testing.assert_close(long, short)
