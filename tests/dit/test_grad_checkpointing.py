"""Memory options of DiT training: gradient checkpointing (same gradients, blocks re-run) and bf16 on the CPU."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch

from sara.dit import DiTConfig
from sara.dit.model import LatentDiT
from sara.dit.training import TextToAudioTask
from tests.dit.test_training import LATENT_DIM, make_corpus, tiny_config


def _tiny_dit() -> LatentDiT:
    """Tiny DiT with every trainable path non-zero (the training init zeroes the AdaLN / cross-attn outputs)."""
    torch.manual_seed(0)
    dit = LatentDiT(dataclasses.replace(DiTConfig.tiny(), latent_dim=LATENT_DIM, depth=4, text_dim=None))
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return dit.train()


def _grads(dit: LatentDiT, checkpointing: bool) -> tuple[dict[str, torch.Tensor], int]:
    """Gradients of a fixed loss and the number of block calls it took (pre-hooks: a recomputation stops
    early, before forward hooks would run)."""
    dit.set_gradient_checkpointing(checkpointing)
    dit.zero_grad(set_to_none=True)
    calls = [0]
    hooks = [b.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for b in dit.blocks]
    g = torch.Generator().manual_seed(1)
    x, ctx = torch.randn(2, LATENT_DIM, 20, generator=g), torch.randn(2, 5, 32, generator=g)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    x_mask = torch.tensor([[True] * 20, [True] * 14 + [False] * 6])
    v = dit(x, torch.tensor([300.0, 900.0]), ctx, mask, x_mask=x_mask)
    (v.pow(2) * x_mask[:, None]).mean().backward()
    for hook in hooks:
        hook.remove()
    return {n: p.grad.clone() for n, p in dit.named_parameters() if p.grad is not None}, calls[0]


def test_checkpointing_gives_the_same_gradients_and_recomputes_blocks() -> None:
    dit = _tiny_dit()
    plain, plain_calls = _grads(dit, False)
    ckpt, ckpt_calls = _grads(dit, True)
    assert plain.keys() == ckpt.keys() and len(plain) == len(list(dit.parameters()))
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)
    assert plain_calls == len(dit.blocks) and ckpt_calls == 2 * len(dit.blocks)  # each block re-run once


def test_checkpointing_is_off_outside_training() -> None:
    dit = _tiny_dit()
    dit.set_gradient_checkpointing(True)
    x, ctx = torch.randn(1, LATENT_DIM, 10), torch.randn(1, 4, 32)
    with torch.no_grad():
        train_out = dit(x, torch.tensor([500.0]), ctx)
        dit.eval()
        eval_out = dit(x, torch.tensor([500.0]), ctx)
    torch.testing.assert_close(train_out, eval_out)


class _CheckpointedTask(TextToAudioTask):
    """What ``--gradient-checkpointing`` will do once the loop calls ``set_gradient_checkpointing``."""

    def build_model(self):  # noqa: ANN201
        model = super().build_model()
        model.set_gradient_checkpointing(True)
        return model


def test_bf16_training_with_checkpointing_on_cpu(tmp_path: Path, fresh_accelerate_state: None) -> None:
    from sara.train import TrainConfig, fit

    manifest, cache = make_corpus(tmp_path)
    task = _CheckpointedTask(tiny_config(manifest, cache))
    run_dir = tmp_path / "run"
    fit(task, TrainConfig(run_dir=str(run_dir), max_steps=3, batch_size=4, ema_decay=None, ckpt_every=3,
                          log_every=1, valid_every=0, mixed_precision="bf16"))
    losses = [json.loads(line)["loss/total"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses), losses


def test_gradient_checkpointing_flag(tmp_path: Path) -> None:
    """``sara train t2a --gradient-checkpointing`` trains with it once TrainConfig has the field, and is a
    one-line usage error (exit 2) before that."""
    from sara.cli.__main__ import main
    from sara.train import TrainConfig

    manifest, cache = make_corpus(tmp_path)
    code = main(["train", "t2a", "--run-dir", str(tmp_path / "run"), "--data", str(manifest), "--latent-cache",
                 str(cache), "--preset", "tiny", "--latent-dim", str(LATENT_DIM), "--segment-seconds", "1",
                 "--max-steps", "1", "--batch-size", "2", "--valid-every", "0", "--gradient-checkpointing"])
    supported = "gradient_checkpointing" in {f.name for f in dataclasses.fields(TrainConfig)}
    assert code == (0 if supported else 2)
