"""Generation: KV-cached == uncached (tokens and logits), sampling modes, CFG with the zero null condition,
seeding, and continuation of prompt codes."""

from __future__ import annotations

import pytest
import torch

from sara.audiogen.config import LMConfig
from sara.audiogen.generation import SamplingConfig, apply_cfg, generate_codes, sample_next_token
from sara.audiogen.lm import TokenLM

GREEDY = SamplingConfig(cfg_coef=3.0, greedy=True)


@pytest.fixture(scope="module")
def lm() -> TokenLM:
    torch.manual_seed(0)
    model = TokenLM(LMConfig.tiny()).eval()
    with torch.no_grad():  # sharpen the random model so choices depend on the context
        for head in model.linears:
            head.weight.mul_(8.0)
    return model


def _text(b: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, 3, 16, generator=g), torch.tensor([[1, 1, 1], [1, 1, 0]][:b])


def _run(lm: TokenLM, sampling: SamplingConfig, frames: int = 12, **kw):  # noqa: ANN003, ANN202
    logits: list[torch.Tensor] = []
    codes = generate_codes(lm, *_text(), frames, sampling, step_logits=logits.append, **kw)
    return codes, torch.stack(logits)


def test_cached_equals_uncached_token_for_token(lm: TokenLM) -> None:
    cached, cached_logits = _run(lm, GREEDY, use_cache=True)
    plain, plain_logits = _run(lm, GREEDY, use_cache=False)
    assert torch.equal(cached, plain)
    torch.testing.assert_close(cached_logits, plain_logits, atol=1e-5, rtol=1e-5)
    assert cached_logits.shape[0] == 12 + 3  # one step per pattern step after step 0


def test_cached_equals_uncached_when_sampling(lm: TokenLM) -> None:
    sampling = SamplingConfig(top_k=5)
    a = generate_codes(lm, *_text(), 10, sampling, generator=torch.Generator().manual_seed(3))
    b = generate_codes(lm, *_text(), 10, sampling, generator=torch.Generator().manual_seed(3), use_cache=False)
    assert torch.equal(a, b)


def test_shapes_range_and_seed(lm: TokenLM) -> None:
    sampling = SamplingConfig(top_k=0, temperature=2.0)
    a = generate_codes(lm, *_text(), 9, sampling, generator=torch.Generator().manual_seed(0))
    b = generate_codes(lm, *_text(), 9, sampling, generator=torch.Generator().manual_seed(0))
    c = generate_codes(lm, *_text(), 9, sampling, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 4, 9) and a.dtype == torch.long
    assert int(a.min()) >= 0 and int(a.max()) < 16
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_top_k_one_top_p_tiny_and_zero_temperature_are_greedy(lm: TokenLM) -> None:
    greedy, _ = _run(lm, GREEDY)
    for sampling in (SamplingConfig(top_k=1), SamplingConfig(top_p=1e-9), SamplingConfig(temperature=0.0)):
        codes = generate_codes(lm, *_text(), 12, sampling, generator=torch.Generator().manual_seed(5))
        assert torch.equal(codes, greedy), sampling


def test_top_k_restricts_choices() -> None:
    logits = torch.tensor([[[0.0, 5.0, 4.0, -1.0]]]).expand(1, 1, 4).repeat(500, 1, 1)
    tokens = sample_next_token(logits, SamplingConfig(top_k=2), torch.Generator().manual_seed(0))
    assert set(tokens.unique().tolist()) == {1, 2}
    tokens = sample_next_token(logits, SamplingConfig(top_p=0.9), torch.Generator().manual_seed(0))
    assert set(tokens.unique().tolist()) <= {1, 2} and 1 in tokens


def test_cfg_formula_and_zero_null_condition(lm: TokenLM) -> None:
    cond, uncond = torch.randn(2, 4, 16), torch.randn(2, 4, 16)
    torch.testing.assert_close(apply_cfg(torch.cat([cond, uncond]), 3.0), uncond + 3.0 * (cond - uncond))
    # coefficient 0 keeps only the null rows: the same as conditioning on zero text without guidance
    states, mask = _text()
    null_only, _ = _run(lm, SamplingConfig(cfg_coef=0.0, greedy=True))
    unconditional = generate_codes(lm, torch.zeros_like(states), torch.zeros_like(mask), 12,
                                   SamplingConfig(cfg_coef=1.0, greedy=True))
    assert torch.equal(null_only, unconditional)
    guided, _ = _run(lm, GREEDY)
    assert not torch.equal(guided, null_only)


def test_continuation_keeps_prompt_and_matches_full_greedy(lm: TokenLM) -> None:
    full, _ = _run(lm, GREEDY)
    continued, _ = _run(lm, GREEDY, prompt=full[..., :5])
    assert torch.equal(continued, full)
    other = torch.randint(0, 16, (2, 4, 5))
    continued, _ = _run(lm, GREEDY, prompt=other)
    assert torch.equal(continued[..., :5], other)
    with pytest.raises(ValueError, match="prompt"):
        generate_codes(lm, *_text(), 5, GREEDY, prompt=other)


def test_extended_generation_continues_windows(lm: TokenLM) -> None:
    from sara.audiogen.generation import generate_extended

    states, mask = _text()
    out = generate_extended(lm, states, mask, 11, window=6, stride=2, sampling=GREEDY)
    assert out.shape == (2, 4, 11)
    first = generate_codes(lm, states, mask, 6, GREEDY)
    assert torch.equal(out[..., :6], first)
    second = generate_codes(lm, states, mask, 6, GREEDY, prompt=first[..., 2:])
    assert torch.equal(out[..., 6:8], second[..., 4:])
    assert torch.equal(generate_extended(lm, states, mask, 6, window=6, stride=2, sampling=GREEDY), first)
    prompt = torch.randint(0, 16, (2, 4, 3))
    assert torch.equal(generate_extended(lm, states, mask, 9, 6, 2, GREEDY, prompt=prompt)[..., :3], prompt)
    with pytest.raises(ValueError, match="stride"):
        generate_extended(lm, states, mask, 9, window=4, stride=4)
