"""Data-parallel training is exact: real 2-process CPU runs (gloo) of the vocoder, DiT and encoder trainers.

Each run is the real CLI (``python -m sara.cli train ...``) alone, under ``torchrun --nproc_per_node 2`` or
under ``accelerate launch``.  What has to hold for ``P`` processes with batch ``B`` to train exactly like one
process with batch ``P * B`` (or ``B`` with ``P`` accumulation steps):

* the global batch is the same items: accelerate's shard of the seeded sampler gives rank ``r`` batch
  ``P k + r``, so step ``k`` sees positions ``P B k .. P B (k + 1)`` of the epoch either way (drop_last:
  whole rounds only; the tiny sets here hold a multiple of ``P B`` items);
* every random draw of the loss belongs to its item (``sara.train.item_noise``): drawn from the process RNG,
  all ranks drew the same noise, and it differed from the 1-process run's;
* the loss is a mean of per-item terms, so DDP's average of per-process means is the global mean (the
  vocoder's spectral loss is frame-weighted: equal because every crop here is full length);
* nothing normalises over the batch inside one process: the encoder's BatchNorm takes cross-process
  statistics and its dB floor is per item (``sara.encoder.training``);
* the vocoder's soft parameter-range constraint flips gradient signs after the gradients are averaged;
* clipping (global norm after the all-reduce), EMA and ScaledAdam's clipping history see only synced values.

**Tolerance.**  The runs sum in different orders, so they agree to float32 round-off, not bit for bit.
Adam-type optimisers divide each gradient by its own running RMS, so on parameters whose true gradient is
zero (key biases of attention and q/k-norms: softmax ignores a shift) round-off noise becomes updates of size
``lr``; the largest element differences (~1e-6) sit there.  The check is therefore on the whole update:
``||w_a - w_b|| / ||w_a - w_0|| < 1e-3`` over all parameters (measured: vocoder 4e-7, DiT 9e-6, encoder 8e-5
-- the encoder's MAE decoder has qkv key biases), while a broken gradient sync or data split gives 0.33
(``test_broken_*``).  Resuming is deterministic and checked bit-exact.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from . import _dist_helpers as h

pytestmark = pytest.mark.filterwarnings("ignore")

TOL = 1e-3  # relative L2 distance of two runs' weights, see the module docstring
STEPS = 4  # 8 items, global batch 4: two epochs
B = 2  # per-process batch


@dataclass
class Trainer:
    """One ``sara train`` task with tiny data and flags (constant learning rate where the task allows)."""

    task: str
    make_data: Callable[[Path], list[str]]
    flags: list[str]
    root: Path
    _data: list[str] = field(default_factory=list)
    _runs: dict[str, Path] = field(default_factory=dict)
    _init: dict[str, torch.Tensor] | None = None

    @property
    def data(self) -> list[str]:
        if not self._data:
            self._data = self.make_data(self.root / "data") + self.flags
        return self._data

    def run(self, name: str, launcher: h.Launcher, batch_size: int, *, steps: int = STEPS,
            extra: tuple[str, ...] = (), break_mode: str | None = None) -> Path:
        """The run directory of run ``name`` (trained once, then reused by the other tests)."""
        if name not in self._runs:
            h.train(launcher, self.task, self.root / name, self.data, batch_size=batch_size, steps=steps,
                    extra=extra, break_mode=break_mode)
            self._runs[name] = self.root / name
        return self._runs[name]

    def reference(self) -> dict[str, torch.Tensor]:
        """One process, batch ``2 B``."""
        return h.final_weights(self.run("single-2B", "single", 2 * B))

    def init(self) -> dict[str, torch.Tensor]:
        if self._init is None:
            self._init = h.initial_weights(self.task, self.data)
        return self._init

    def compare(self, name: str, weights: dict[str, torch.Tensor]) -> float:
        """Relative L2 distance of ``weights`` to the reference; prints the measured numbers."""
        ref = self.reference()
        rel = h.relative_l2(ref, weights, self.init())
        print(f"[equivalence] {self.task} {name} vs 1 process x batch {2 * B}: "
              f"max |dw| {h.max_abs_diff(ref, weights):.3g}, relative L2 {rel:.3g}")
        return rel


@pytest.fixture(scope="module")
def trainers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trainer]:
    root = tmp_path_factory.mktemp("dist")
    return {
        "vocoder": Trainer("vocoder", h.vocoder_data, ["--preset", "tiny", "--segment-seconds", "0.4",
                                                       "--warmup-batches", "0", "--lr-batches", "1e9"],
                           root / "vocoder"),
        "t2a": Trainer("t2a", h.t2a_data, ["--preset", "tiny", "--segment-seconds", "0.8", "--warmup-steps", "0",
                                           "--lr", "1e-3"], root / "t2a"),
        # the encoder's warm-up + cosine schedule depends on the step: it also checks the LR schedule
        "encoder": Trainer("encoder", h.encoder_data, ["--preset", "tiny", "--crop-seconds", "1.0"],
                           root / "encoder"),
    }


def _loop_steps_scheduler_once() -> bool:
    """Whether the loop's Accelerator steps the LR scheduler once per optimizer step.

    accelerate's default (``step_scheduler_with_optimizer=True``) steps it ``num_processes`` times per
    optimizer step (it assumes schedules counted in per-process batches); sara counts ``max_steps`` and
    every schedule in optimizer steps, so ``sara.train.loop`` must pass ``step_scheduler_with_optimizer=False``.
    """
    import sara.train.loop as loop

    return "step_scheduler_with_optimizer=False" in inspect.getsource(loop)


# --------------------------------------------------------------------------------------------- vocoder


def test_vocoder_two_processes_equal_one_process(trainers: dict[str, Trainer]) -> None:
    voc = trainers["vocoder"]
    rel = voc.compare("torchrun 2 x batch 2", h.final_weights(voc.run("torchrun-B", "torchrun", B)))
    assert rel < TOL


def test_vocoder_two_process_resume_is_exact(trainers: dict[str, Trainer]) -> None:
    voc = trainers["vocoder"]
    uninterrupted = h.final_weights(voc.run("torchrun-B", "torchrun", B))
    voc.run("torchrun-resumed", "torchrun", B, steps=STEPS // 2)  # stops with a checkpoint at step 2
    del voc._runs["torchrun-resumed"]
    resumed = h.final_weights(voc.run("torchrun-resumed", "torchrun", B))  # resumes from it to step 4
    print(f"[equivalence] vocoder torchrun resumed at step {STEPS // 2} vs uninterrupted: "
          f"max |dw| {h.max_abs_diff(uninterrupted, resumed):.3g}")
    assert h.max_abs_diff(uninterrupted, resumed) == 0.0


def test_vocoder_grad_accum_equals_double_batch(trainers: dict[str, Trainer]) -> None:
    voc = trainers["vocoder"]
    accum = h.final_weights(voc.run("single-B-accum2", "single", B, extra=("--grad-accum", "2")))
    assert voc.compare("1 process batch 2 x accum 2", accum) < TOL


# ------------------------------------------------------------------------------------------------- DiT


def test_dit_accelerate_launch_equals_one_process(trainers: dict[str, Trainer]) -> None:
    """``accelerate launch`` (2 gloo processes)."""
    dit = trainers["t2a"]
    rel = dit.compare("accelerate launch 2 x batch 2", h.final_weights(dit.run("accelerate-B", "accelerate", B)))
    assert rel < TOL


def test_dit_grad_accum_equals_double_batch(trainers: dict[str, Trainer]) -> None:
    dit = trainers["t2a"]
    accum = h.final_weights(dit.run("single-B-accum2", "single", B, extra=("--grad-accum", "2")))
    assert dit.compare("1 process batch 2 x accum 2", accum) < TOL


# --------------------------------------------------------------------------------------------- encoder


@pytest.mark.xfail(not _loop_steps_scheduler_once(), strict=True,
                   reason="sara.train.loop lets accelerate step the LR scheduler once per process per step")
def test_encoder_two_processes_equal_one_process(trainers: dict[str, Trainer]) -> None:
    """torchrun (2 gloo processes); also the warm-up + cosine LR at every step."""
    enc = trainers["encoder"]
    run = enc.run("torchrun-B", "torchrun", B)
    lrs = [h.metric_rows(d, "lr") for d in (enc.run("single-2B", "single", 2 * B), run)]
    assert lrs[0] == pytest.approx(lrs[1], rel=1e-9), lrs
    assert enc.compare("torchrun 2 x batch 2", h.final_weights(run)) < TOL


# ------------------------------------------------------------------------------------ broken set-ups


@pytest.mark.parametrize("mode", ["nosync", "samedata"])
def test_broken_data_parallelism_fails_the_check(trainers: dict[str, Trainer], mode: str) -> None:
    """Without the gradient all-reduce, or with every process reading the same batches, the 2-process
    vocoder run no longer matches one process (so the tests above can fail)."""
    voc = trainers["vocoder"]
    broken = h.final_weights(voc.run(f"torchrun-{mode}", "torchrun", B, break_mode=mode))
    rel = voc.compare(f"torchrun 2 x batch 2, SARA_TEST_BREAK={mode}", broken)
    assert rel > 30 * TOL


# ------------------------------------------------------------------ the pieces, in one process (fast)


def test_loss_noise_belongs_to_the_item_not_to_the_batch() -> None:
    """An item's draws are the same alone or batched with others, and differ between items."""
    from sara.dit.config import DiTConfig
    from sara.dit.training import T2ATrainConfig, TextToAudioTask
    from sara.vocoder.training import VocoderTask, VocoderTrainConfig

    voc = VocoderTask(VocoderTrainConfig(latent_cache="unused"))
    dit = TextToAudioTask(T2ATrainConfig(manifest="m", latent_dir="d", model=DiTConfig.tiny()))
    for draw in (lambda s: voc.draw_noise(s, 960), lambda s: dit.draw_noise(s, (4, 10))):
        pair, alone = draw([11, 22]), draw([22])
        for both, one in zip(pair, alone):
            assert torch.equal(both[1:], one)
        assert not torch.equal(pair[1][0], pair[1][1])


def test_noise_seeds_follow_the_item_seed() -> None:
    from sara.train.item_noise import NOISE_SEED, batch_noise_seeds, with_noise_seeds
    from sara.train.resume import fork_rng

    ds = with_noise_seeds([{"x": torch.zeros(1)}] * 3)  # type: ignore[arg-type]
    with fork_rng(123):
        a = int(ds[1][NOISE_SEED])
    with fork_rng(124):
        b = int(ds[1][NOISE_SEED])
    with fork_rng(123):
        assert int(ds[1][NOISE_SEED]) == a != b
        assert int(ds[2][NOISE_SEED]) != a
    assert batch_noise_seeds({NOISE_SEED: torch.tensor([a, b])}, 2) == [a, b]


def test_vocoder_range_limits_act_on_the_averaged_gradient() -> None:
    from sara.vocoder.config import VocoderConfig
    from sara.vocoder.model import VocoderGenerator

    gen = VocoderGenerator(VocoderConfig.tiny()).train()
    gen.limit_params_on_synced_grads(True)
    scale = next(p for p, low, high in gen.param_limits() if (low, high) == (0.5, 1.0))  # a ChannelScale [C, 1]
    with torch.no_grad():
        scale.fill_(1.2)
    scale.grad = torch.full_like(scale, -1.0)  # descent would push it further above 1.0
    torch.manual_seed(0)
    gen.apply_param_limits_(prob=1.0)
    assert torch.equal(scale.grad, torch.ones_like(scale))
    assert all(not m.limit_in_forward for m in gen.modules() if hasattr(m, "limit_in_forward"))


def test_cross_process_batch_norm_alone_is_batch_norm() -> None:
    from sara.encoder.training import CrossProcessBatchNorm2d

    bn, ref = CrossProcessBatchNorm2d(3, momentum=0.1), torch.nn.BatchNorm2d(3, momentum=0.1)
    x = torch.randn(4, 3, 2, 5) * 3 + 1
    torch.testing.assert_close(bn(x), ref(x))
    torch.testing.assert_close(bn.running_var, ref.running_var)


def _bn_worker(rank: int, store: str, out: str) -> None:
    import torch.distributed as dist

    from sara.encoder.training import CrossProcessBatchNorm2d

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        x = (torch.randn(6, 3, 2, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1)[3 * rank : 3 * rank + 3]
        bn = CrossProcessBatchNorm2d(3, momentum=0.1)
        torch.nn.init.uniform_(bn.weight, generator=torch.Generator().manual_seed(1))
        x.requires_grad_(True)
        y = bn(x)
        (y * torch.arange(y.numel()).view_as(y) * (rank + 1)).sum().backward()
        torch.save({"y": y.detach(), "gx": x.grad, "gw": bn.weight.grad, "rv": bn.running_var}, f"{out}/{rank}.pt")
        dist.barrier()  # neither process tears gloo down while the other is still in a collective (seen: SIGABRT)
    finally:
        dist.destroy_process_group()


def test_cross_process_batch_norm_equals_batch_norm_of_the_joined_batch(tmp_path: Path) -> None:
    """Two gloo processes with 3 items each: outputs, running stats and input gradients as one BatchNorm on
    all 6 (the weight gradient is each process's share: DDP sums them)."""
    import torch.multiprocessing as mp

    mp.spawn(_bn_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    parts = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1)]
    x = (torch.randn(6, 3, 2, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1).requires_grad_(True)
    ref = torch.nn.BatchNorm2d(3, momentum=0.1)
    torch.nn.init.uniform_(ref.weight, generator=torch.Generator().manual_seed(1))
    y = ref(x)
    weights = torch.cat([torch.arange(y[:3].numel()).view_as(y[:3]) * (r + 1) for r in (0, 1)])
    (y * weights).sum().backward()
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach())
    torch.testing.assert_close(torch.cat([p["gx"] for p in parts]), x.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(parts[0]["gw"] + parts[1]["gw"], ref.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(parts[0]["rv"], ref.running_var)
