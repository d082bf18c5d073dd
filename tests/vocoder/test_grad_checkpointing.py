"""Memory options of vocoder training: gradient checkpointing (same gradients, blocks re-run) and bf16 on CPU."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from sara.vocoder.blocks import ConvNeXtBlock
from sara.vocoder.model import VocoderGenerator
from sara.vocoder.training import VocoderTask, VocoderTrainConfig

from .helpers import ENCODER_DIM, randomize, tiny_config


def _grads(gen: VocoderGenerator, checkpointing: bool) -> tuple[dict[str, torch.Tensor], int]:
    """Gradients of a fixed loss (random draws of the forward re-seeded) and the block calls (pre-hooks)."""
    gen.set_gradient_checkpointing(checkpointing)
    gen.zero_grad(set_to_none=True)
    calls = [0]
    blocks = [m for m in gen.modules() if isinstance(m, ConvNeXtBlock)]
    hooks = [b.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for b in blocks]
    g = torch.Generator().manual_seed(1)
    latents, x_t = torch.randn(2, ENCODER_DIM, 3, generator=g), 0.1 * torch.randn(2, 3 * 960, generator=g)
    torch.manual_seed(5)  # branch dropout and the in-forward range limits draw from the process RNG
    pred = gen(x_t, torch.tensor([0.2, 0.7]), latents=latents)
    pred.pow(2).mean().backward()
    for hook in hooks:
        hook.remove()
    return {n: p.grad.clone() for n, p in gen.named_parameters() if p.grad is not None}, calls[0]


@pytest.mark.parametrize("synced_limits", [False, True])
def test_checkpointing_gives_the_same_gradients_and_recomputes_blocks(synced_limits: bool) -> None:
    gen = randomize(VocoderGenerator(tiny_config(branch_dropout=0.5))).train()  # scales out of range: limits act
    gen.limit_params_on_synced_grads(synced_limits)
    plain, plain_calls = _grads(gen, False)
    ckpt, ckpt_calls = _grads(gen, True)
    assert plain.keys() == ckpt.keys() and len(plain) == len(list(gen.parameters()))
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-5, atol=1e-8, msg=name)
    num_blocks = sum(isinstance(m, ConvNeXtBlock) for m in gen.modules())
    assert plain_calls == num_blocks and ckpt_calls == 2 * num_blocks


def test_checkpointing_is_off_when_sampling() -> None:
    gen = randomize(VocoderGenerator(tiny_config())).eval()
    gen.set_gradient_checkpointing(True)
    latents, x = torch.randn(1, ENCODER_DIM, 2), torch.randn(1, 1920)
    with torch.no_grad():
        out = gen(x, torch.tensor([0.5]), latents=latents)
        cond = gen.prepare_condition(latents, 1920, project_blocks=True)
        torch.testing.assert_close(gen(x, torch.tensor([0.5]), condition=cond), out)


def _corpus(root: Path) -> tuple[Path, Path]:
    """Four 1 s tones at 24 kHz and a latent cache ``[32, 25]`` for each."""
    rng = np.random.default_rng(0)
    t = np.arange(24000) / 24000
    (root / "audio").mkdir(parents=True)
    (root / "cache").mkdir()
    for i in range(4):
        sf.write(str(root / "audio" / f"t{i}.wav"), (0.4 * np.sin(2 * np.pi * (200 + 90 * i) * t)).astype(np.float32),
                 24000)
        save_file({"latents": torch.from_numpy(rng.standard_normal((ENCODER_DIM, 25)).astype(np.float32))},
                  str(root / "cache" / f"t{i}.safetensors"))
    return root / "audio", root / "cache"


class _CheckpointedTask(VocoderTask):
    """What ``--gradient-checkpointing`` will do once the loop calls ``set_gradient_checkpointing``."""

    def build_model(self):  # noqa: ANN201
        model = super().build_model()
        model.set_gradient_checkpointing(True)
        return model


def test_bf16_training_with_checkpointing_on_cpu(tmp_path: Path, fresh_accelerate_state: None) -> None:
    from sara.train import TrainConfig, fit

    audio, cache = _corpus(tmp_path)
    task = _CheckpointedTask(VocoderTrainConfig(model=tiny_config(), train_data=(str(audio),), latent_cache=str(cache),
                                                segment_seconds=0.4))
    run_dir = tmp_path / "run"
    fit(task, TrainConfig(run_dir=str(run_dir), max_steps=3, batch_size=2, ema_decay=None, ckpt_every=3,
                          log_every=1, valid_every=0, grad_clip=None, mixed_precision="bf16"))
    losses = [json.loads(line)["loss/total"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses), losses
