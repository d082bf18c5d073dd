"""The AudioGen API: token_logits, generate_tokens (options, errors), audio through a codec, releases
(save -> load -> same logits), and audiocraft-format directories."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from sara.audiogen.config import LMConfig
from sara.audiogen.lm import TokenLM
from sara.audiogen.model import AudioGen
from sara.errors import CheckpointError, ConfigError, SaraError
from sara.text.factory import TextEncoderSpec
from tests.audiogen.audiocraft_lm_layout import write_audiocraft_lm
from tests.audiogen.tiny_text import tiny_conditioner, write_tiny_t5

PROMPTS = ["a dog barks", "rain falls on the roof"]


class ToyCodec(nn.Module):
    """A stand-in with the codec interface (50 Hz, hop 320, 4 x 16 codes): decode maps each frame's codes to a
    constant block, encode reads them back."""

    sample_rate, frame_rate, hop_length = 16000, 50, 320

    def encode(self, wav: Tensor) -> Tensor:
        frames = wav[..., ::320][:, 0].round().long().clamp(0, 15)
        return frames[:, None].expand(-1, 4, -1).contiguous()

    def decode(self, codes: Tensor) -> Tensor:
        return codes[:, :1].float().repeat_interleave(320, dim=-1)

    def decode_latent(self, codes: Tensor) -> Tensor:
        return codes.float().sum(1, keepdim=True)


def _audiogen(codec: nn.Module | None = None) -> AudioGen:
    torch.manual_seed(0)
    return AudioGen(TokenLM(LMConfig.tiny()), tiny_conditioner(), codec, TextEncoderSpec(kind="t5", path="t5"))


def test_token_logits() -> None:
    ag = _audiogen()
    codes = torch.randint(0, 16, (2, 4, 8))
    logits = ag.token_logits(codes, PROMPTS)
    assert logits.shape == (2, 4, 8, 16)
    states, mask = ag.encode_text(PROMPTS)
    expected, valid = ag.lm.compute_predictions(codes, states, mask)
    torch.testing.assert_close(logits, expected, equal_nan=True)
    assert torch.isnan(logits[:, 3, -3:]).all() and not torch.isnan(logits[valid]).any()
    with pytest.raises(ConfigError, match="codes"):
        ag.token_logits(torch.randint(0, 16, (2, 3, 8)), PROMPTS)
    with pytest.raises(ConfigError, match="integers"):
        ag.token_logits(torch.full((2, 4, 8), 16), PROMPTS)


def test_generate_tokens_options_and_errors() -> None:
    ag = _audiogen()
    a = ag.generate_tokens(PROMPTS, frames=7, seed=3)
    assert a.shape == (2, 4, 7) and int(a.max()) < 16 and torch.equal(a, ag.generate_tokens(PROMPTS, frames=7, seed=3))
    greedy = ag.generate_tokens(PROMPTS, frames=7, greedy=True)
    assert torch.equal(greedy, ag.generate_tokens(PROMPTS, frames=7, top_k=1, seed=9))
    assert torch.equal(greedy, ag.generate_tokens(PROMPTS, frames=7, greedy=True, use_cache=False))
    cont = ag.generate_tokens(PROMPTS, frames=7, greedy=True, prompt_codes=greedy[..., :3])
    assert torch.equal(cont, greedy)
    for bad in ({"top_p": 1.5}, {"top_k": -1}, {"temperature": -1.0}, {"frames": 0}, {"seed": -1}, {"seed": 2**64}):
        with pytest.raises(ConfigError):
            ag.generate_tokens(PROMPTS, **{"frames": 5, **bad})
    with pytest.raises(ConfigError, match="frames"):
        ag.generate_tokens(PROMPTS, frames=3, prompt_codes=greedy[..., :3])


def test_audio_through_the_codec() -> None:
    ag = _audiogen(ToyCodec())
    wav = ag(PROMPTS, duration=0.1, greedy=True)
    tokens = ag.generate_tokens(PROMPTS, frames=5, greedy=True)
    assert wav.shape == (2, 5 * 320) and ag.sample_rate == 16000 and ag.frame_rate == 50
    torch.testing.assert_close(wav, ToyCodec().decode(tokens)[:, 0])
    prompt_wav = ToyCodec().decode(tokens[..., :2])
    cont = ag.generate_continuation(prompt_wav, PROMPTS, duration=0.1, greedy=True)
    assert cont.shape == (2, 1600) and torch.equal(cont[:, :640], prompt_wav[:, 0])
    with pytest.raises(ConfigError, match="duration"):
        ag(PROMPTS, duration=0.001)
    with pytest.raises(SaraError, match="no codec"):
        _audiogen()(PROMPTS, duration=0.1)


def test_release_round_trip(tmp_path: Path) -> None:
    write_tiny_t5(tmp_path / "release" / "t5")
    ag = _audiogen()
    ag.save_pretrained(tmp_path / "release")
    loaded = AudioGen.from_pretrained(tmp_path / "release")
    codes = torch.randint(0, 16, (2, 4, 6))
    torch.testing.assert_close(loaded.token_logits(codes, PROMPTS), ag.token_logits(codes, PROMPTS), equal_nan=True)
    assert loaded.config == ag.config
    with pytest.raises(SaraError, match="no codec"):
        _ = loaded.codec


def test_unknown_directory_and_bad_release(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="neither"):
        AudioGen.from_pretrained(tmp_path)
    ag = _audiogen()
    ag.save_pretrained(tmp_path / "r")
    state = {"emb.0.weight": torch.zeros(17, 32)}
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "r" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing keys"):
        AudioGen.from_pretrained(tmp_path / "r", text_encoder=tmp_path / "nowhere")


def test_audiocraft_directory_token_only(tmp_path: Path) -> None:
    write_audiocraft_lm(tmp_path / "ag")
    write_tiny_t5(tmp_path / "ag" / "t5-large", d_model=1024)  # found as <dir>/<t5 name>
    ag = AudioGen.from_pretrained(tmp_path / "ag")
    assert ag.config.text_dim == 1024 and ag.text.dim == 1024
    assert AudioGen.from_pretrained(tmp_path / "ag" / "state_dict.bin").config == ag.config
    codes = ag.generate_tokens(PROMPTS, frames=6, seed=0)
    assert codes.shape == (2, 4, 6) and int(codes.max()) < 32
    assert ag.token_logits(codes, PROMPTS).shape == (2, 4, 6, 32)
    other = AudioGen.from_pretrained(tmp_path / "ag", text_encoder=tmp_path / "ag" / "t5-large")
    assert torch.equal(other.generate_tokens(PROMPTS, frames=6, seed=0), codes)


def test_audiocraft_directory_needs_its_t5(tmp_path: Path) -> None:
    write_audiocraft_lm(tmp_path / "ag", t5_name="t5-small")
    with pytest.raises(SaraError, match="t5-small") as err:
        AudioGen.from_pretrained(tmp_path / "ag")
    assert "\n" not in str(err.value)


def test_audiocraft_directory_with_codec(tmp_path: Path) -> None:
    """Both official files (the codec package from the codec tests' layout writer) -> audio end to end."""
    from tests.codec.audiocraft_layout import TinyEncodec, write_compression_package

    write_audiocraft_lm(tmp_path / "ag")
    write_tiny_t5(tmp_path / "ag" / "t5-large", d_model=1024)
    write_compression_package(tmp_path / "ag", TinyEncodec(n_q=4, bins=32))
    ag = AudioGen.from_pretrained(tmp_path / "ag")
    hop = round(ag.sample_rate / ag.frame_rate)
    wav = ag(PROMPTS, duration=6 / ag.frame_rate, seed=0)
    assert wav.shape == (2, 6 * hop) and torch.isfinite(wav).all()
    codes = ag.codec.encode(torch.randn(2, 1, 4 * hop))
    assert codes.shape == (2, 4, 4) and ag.codec.decode_latent(codes).shape[:2] == (2, 8)
    cont = ag.generate_tokens(PROMPTS, frames=6, prompt_codes=codes, seed=0)
    assert torch.equal(cont[..., :4], codes)
    write_compression_package(tmp_path / "bad", TinyEncodec(n_q=2, bins=32))
    (tmp_path / "bad" / "state_dict.bin").symlink_to(tmp_path / "ag" / "state_dict.bin")
    (tmp_path / "bad" / "t5-large").symlink_to(tmp_path / "ag" / "t5-large")
    with pytest.raises(CheckpointError, match="2 codebooks"):
        AudioGen.from_pretrained(tmp_path / "bad")


def test_acoustic_encoding() -> None:
    ag = _audiogen(ToyCodec())
    codes = torch.randint(0, 16, (2, 4, 5))
    enc = ag.acoustic_encoding(codes=codes, decode_audio=True)
    assert torch.equal(enc.tokens, codes) and enc.frame_rate == 50 and enc.sample_rate == 16000
    torch.testing.assert_close(enc.latent, ToyCodec().decode_latent(codes).transpose(1, 2))
    assert enc.audio is not None and enc.audio.shape == (2, 1600)
    gen = ag.acoustic_encoding(PROMPTS, frames=6, greedy=True)
    assert torch.equal(gen.tokens, ag.generate_tokens(PROMPTS, frames=6, greedy=True)) and gen.audio is None
    assert gen.latent.shape == (2, 6, 1)
    with pytest.raises(ConfigError, match="either"):
        ag.acoustic_encoding(PROMPTS, codes=codes)


def test_long_generation_uses_windows() -> None:
    ag = _audiogen()
    out = ag.generate_tokens(PROMPTS, frames=9, greedy=True, window_frames=5, stride_frames=2)
    first = ag.generate_tokens(PROMPTS, frames=5, greedy=True)
    assert out.shape == (2, 4, 9) and torch.equal(out[..., :5], first)
    single = ag.generate_tokens(PROMPTS, frames=9, greedy=True, window_frames=None)
    assert single.shape == (2, 4, 9)  # one 9-frame pass (its first frames see codebook 0 beyond frame 5)
    with pytest.raises(ConfigError, match="stride_frames"):
        ag.generate_tokens(PROMPTS, frames=9, window_frames=5, stride_frames=5)


def test_non_finite_guidance_is_refused() -> None:
    with pytest.raises(ConfigError, match="cfg_coef"):
        _audiogen().generate_tokens(PROMPTS, frames=3, cfg_coef=float("nan"))


def test_audiocraft_directory_to_sara_release(tmp_path: Path) -> None:
    """An audiocraft directory saved as a sara release (LM safetensors + the codec's own release) reloads equal."""
    from tests.codec.audiocraft_layout import TinyEncodec, write_compression_package

    write_audiocraft_lm(tmp_path / "ag")
    t5 = write_tiny_t5(tmp_path / "ag" / "t5-large", d_model=1024)
    write_compression_package(tmp_path / "ag", TinyEncodec(n_q=4, bins=32))
    ag = AudioGen.from_pretrained(tmp_path / "ag")
    ag.save_pretrained(tmp_path / "release")
    assert (tmp_path / "release" / "codec" / "config.json").is_file()
    back = AudioGen.from_pretrained(tmp_path / "release", text_encoder=t5)
    torch.testing.assert_close(back(PROMPTS, duration=4 / ag.frame_rate, seed=1), ag(PROMPTS, duration=4 / ag.frame_rate, seed=1))
