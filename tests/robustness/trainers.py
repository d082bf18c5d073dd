"""Tiny versions of every sara trainer on a synthetic corpus, for resume tests (in-process and subprocess).

``python -m tests.robustness.trainers DATA RUN_DIR TRAINER MAX_STEPS [WORKERS] [KILL_AT]`` trains one of
them with :func:`sara.train.fit`; ``KILL_AT`` (``"<hook>:<n>"``) makes the process SIGKILL itself the
``n``-th time the hook runs, to simulate a crash at that moment:

* ``step:N``   -- in the middle of the N-th optimizer step (after the forward pass, before the update);
* ``fsync:N``  -- inside the N-th atomic file write, after the data reached the temporary file but before it
  is renamed into place (the first is ``run.json``; later ones are checkpoint files such as ``trainer.json``);
* ``finalize:N`` -- after the N-th checkpoint was fully written to ``step-K.tmp`` but before the rename.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

TRAINERS = ("encoder", "vocoder", "vocoder_gan", "t2a")


def make_data(root: Path) -> Path:
    """Write the synthetic corpus (tones + manifest), a tiny encoder and stage-1 vocoder, and t2a latents."""
    from sara.vocoder import SemanticVocoder
    from tests.vocoder.helpers import tiny_config, tiny_encoder, write_tone

    rows = []
    for i, freq in enumerate((220, 330, 440, 550, 660, 770)):
        sr = 16000 if i % 2 else 24000
        write_tone(root / "audio" / f"tone{i}.wav", 1.2, sr, freq)
        rows.append({"path": f"audio/tone{i}.wav", "split": "train", "caption": f"tone number {i}", "class": "tone"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tiny_encoder().save_pretrained(root / "enc")
    SemanticVocoder(tiny_config()).save_pretrained(root / "stage1")
    g = torch.Generator().manual_seed(0)
    for r in rows:
        lat = torch.randn(8, 40, generator=g)
        out = root / "latents" / Path(r["path"]).with_suffix(".safetensors")
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file({"latents": lat}, str(out))
    return root


def build_task(name: str, data: Path):  # noqa: ANN201 - a TrainTask
    """The tiny task ``name`` (one of :data:`TRAINERS`) on the corpus in ``data``."""
    from tests.vocoder.helpers import tiny_config

    manifest = str(data / "manifest.jsonl")
    if name == "encoder":
        from sara.encoder import EncoderConfig
        from sara.encoder.training import EncoderTask, EncoderTaskConfig

        return EncoderTask(EncoderTaskConfig(encoder=EncoderConfig.tiny(), manifest=manifest, crop_seconds=0.6,
                                             lr=2e-3, gain_db=(-6.0, 6.0), valid_split=None))
    if name == "vocoder":
        from sara.vocoder.training import VocoderTask, VocoderTrainConfig

        return VocoderTask(VocoderTrainConfig(model=tiny_config(), train_data=(manifest,), encoder=str(data / "enc"),
                                              segment_seconds=0.4, sample_steps=2, sample_seconds=0.4))
    if name == "vocoder_gan":
        from sara.vocoder.discriminators import DiscriminatorConfig
        from sara.vocoder.gan import VocoderGANTask, VocoderGANTrainConfig

        return VocoderGANTask(VocoderGANTrainConfig(
            model=tiny_config(), train_data=(manifest,), encoder=str(data / "enc"), segment_seconds=0.4,
            init=str(data / "stage1"), discriminator=DiscriminatorConfig.tiny(), gen_start_step=2))
    if name == "t2a":
        from sara.dit import DiTConfig
        from sara.dit.training import T2ATrainConfig, TextToAudioTask

        model = dataclasses.replace(DiTConfig.tiny(), latent_dim=8)
        return TextToAudioTask(T2ATrainConfig(manifest=manifest, latent_dir=str(data / "latents"), model=model,
                                              segment_seconds=1.0, warmup_steps=2, lr=3e-3, valid_split=None,
                                              sample_prompts=("a tone",), sample_seconds=1.0, sample_steps=2))
    raise ValueError(name)


def train_config(run_dir: Path, max_steps: int, workers: int = 0):  # noqa: ANN201 - TrainConfig
    """Checkpoints every 2 steps, EMA on, batch 2 from 6 clips (3 batches per epoch, so epochs roll over)."""
    from sara.train import TrainConfig

    return TrainConfig(run_dir=str(run_dir), max_steps=max_steps, batch_size=2, log_every=1, ckpt_every=2,
                       valid_every=0, ema_decay=0.9, grad_clip=1.0, num_workers=workers, keep_checkpoints=1)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """Raw and EMA weights of the newest checkpoint (``ema/`` prefix for the EMA)."""
    from safetensors.torch import load_file

    from sara.train.checkpoint import latest_checkpoint, model_weights_path

    latest = latest_checkpoint(run_dir)
    assert latest is not None, f"{run_dir}: no checkpoint"
    weights = load_file(str(model_weights_path(latest)))
    ema = latest / "ema.safetensors"
    if ema.is_file():
        weights.update({f"ema/{k}": v for k, v in load_file(str(ema)).items()})
    return weights


def _install_kill(spec: str) -> None:
    """Arrange for a SIGKILL of this process at the hook described by ``spec`` (see the module docstring)."""
    hook, n = spec.split(":")
    count = {"calls": 0}

    def maybe_die() -> None:
        count["calls"] += 1
        if count["calls"] == int(n):
            os.kill(os.getpid(), signal.SIGKILL)

    if hook == "fsync":
        import sara.outputs as ser

        real_fsync = os.fsync
        ser.os = _Proxy(os, fsync=lambda fd: (real_fsync(fd), maybe_die()))  # type: ignore[attr-defined]
    elif hook == "finalize":
        from sara.train import checkpoint

        real_finalize = checkpoint.finalize
        checkpoint.finalize = lambda *a, **k: (maybe_die(), real_finalize(*a, **k))[1]  # type: ignore[assignment]
    elif hook == "step":
        from sara.train import loop

        real_step = loop._optimizer_step
        loop._optimizer_step = lambda run, finite: (maybe_die(), real_step(run, finite))[1]  # type: ignore[assignment]
    else:
        raise ValueError(spec)


class _Proxy:
    """A stand-in for a module with some attributes replaced."""

    def __init__(self, module: object, **overrides: object) -> None:
        self._module, self._overrides = module, overrides

    def __getattr__(self, name: str) -> object:
        return self._overrides.get(name, getattr(self._module, name))


def main(argv: list[str]) -> int:
    """Subprocess entry point (see the module docstring)."""
    from sara.train import fit

    torch.set_num_threads(1)
    data, run_dir, name, max_steps = Path(argv[0]), Path(argv[1]), argv[2], int(argv[3])
    workers = int(argv[4]) if len(argv) > 4 else 0
    if len(argv) > 5 and argv[5] != "-":
        _install_kill(argv[5])
    try:
        fit(build_task(name, data), train_config(run_dir, max_steps, workers))
    except KeyboardInterrupt:  # a clean stop (SIGINT / SIGTERM): the loop checkpointed first
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
