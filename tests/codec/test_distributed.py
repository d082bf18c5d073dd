"""Two gloo processes: codebooks and balancer averages stay identical across ranks fed different data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sara.codec import CodecConfig
from sara.codec.balancer import LossBalancer
from sara.codec.quantizer import ResidualVectorQuantizer

CFG = dataclasses.replace(CodecConfig.tiny(), bins=8, dimension=4, kmeans_iters=3, threshold_ema_dead_code=3.0)


def _worker(rank: int, store: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        rvq = ResidualVectorQuantizer(CFG).train()
        bal = LossBalancer({"a": 1.0, "b": 1.0})
        data = torch.Generator().manual_seed(100 + rank)  # each rank sees other data
        for step in range(3):
            x = torch.randn(2, 4, 30, generator=data) * (1 + rank)
            rvq(x, torch.Generator().manual_seed(step))
            y = torch.randn(2, 5, generator=data, requires_grad=True)
            bal.surrogate({"a": y.pow(2).sum(), "b": y.abs().sum()}, y)
        torch.save({**rvq.state_dict(), **{f"bal.{k}": v for k, v in bal.state_dict().items()}},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_buffers_stay_in_sync_across_ranks(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert float(a["vq.layers.0._codebook.inited"]) == 1.0 and float(a["bal.norm_count"][0]) > 2.5
