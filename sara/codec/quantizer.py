"""Residual vector quantizer with EMA codebooks (audiocraft ``quantization/{vq,core_vq}.py`` semantics).

Each level holds an :class:`EuclideanCodebook` with the buffers audiocraft checkpoints carry
(``inited [1]`` float flag, ``cluster_size [bins]``, ``embed [bins, D]``, ``embed_avg [bins, D]``).  Codes are
``argmax -(|x|^2 - 2 x.e + |e|^2)``; decoding sums the selected rows of every level.

Training-mode forward (buffers change, under ``torch.no_grad``):

1. k-means initialisation on the first batch when ``kmeans_init`` (``embed = embed_avg = centroids``,
   ``cluster_size = counts``, ``inited = 1``);
2. dead-code replacement (from the batch after the k-means one): codes with ``cluster_size < threshold``
   get a random vector of the batch.
   audiocraft replaces only ``embed``, which the EMA normalisation below overwrites in the same step (so its
   replacement has no effect, and its threshold of 2 can exceed the average usage harmlessly); here
   ``embed_avg`` and ``cluster_size`` of a replaced code are reset too (``sample * threshold``, ``threshold``),
   as vector-quantize-pytorch does, so the replacement survives.  Expiry runs before the assignment (the
   order described in facebookresearch/encodec#33), so a replaced code can be chosen in the same batch;
3. EMA: ``cluster_size <- d cs + (1 - d) counts``, ``embed_avg <- d ea + (1 - d) sum_x``,
   ``embed = embed_avg / laplace(cluster_size)``.

A batch with non-finite latents leaves the buffers untouched.  Evaluation-mode forwards never change them
(audiocraft would run k-means on an uninitialised codebook even in eval mode).  The outputs use the codebook
*before* the update, with a straight-through gradient, and a commitment loss ``mse(x, sg(q))`` per level
(averaged over levels, audiocraft's ``penalty``).  Random choices (k-means seeds, replacement vectors) come
from the ``generator`` argument, so training is reproducible and resumable without the global RNG.  Under ``torch.distributed`` the k-means result and replacements are broadcast
from rank 0 and the EMA statistics are averaged over ranks, so every rank keeps identical codebooks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from sara.codec.config import CodecConfig

__all__ = ["EuclideanCodebook", "QuantizerOutput", "ResidualVectorQuantizer", "VectorQuantization", "kmeans"]


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _broadcast(*tensors: Tensor) -> None:
    """Copy rank 0's values into every rank's ``tensors`` (no-op outside torch.distributed)."""
    if _distributed():
        for t in tensors:
            dist.broadcast(t, 0)


def _mean_over_ranks(t: Tensor) -> Tensor:
    if _distributed():
        dist.all_reduce(t)
        t /= dist.get_world_size()
    return t


def _all_ranks(flag: Tensor) -> bool:
    """``flag`` (a bool scalar) on every rank, so all ranks take the same branch around collectives."""
    if _distributed():
        flag = flag.to(torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag)


def sample_vectors(samples: Tensor, num: int, generator: torch.Generator | None) -> Tensor:
    """``num`` rows of ``samples [N, D]``: without replacement when ``N >= num``, else with replacement."""
    n = samples.shape[0]
    if n >= num:
        idx = torch.randperm(n, generator=generator)[:num]
    else:
        idx = torch.randint(0, n, (num,), generator=generator)
    return samples[idx.to(samples.device)]


def nearest(x: Tensor, embed: Tensor) -> Tensor:
    """Index ``[N]`` of the nearest row of ``embed [C, D]`` for each row of ``x [N, D]`` (audiocraft's formula)."""
    dist_neg = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed.t() + embed.pow(2).sum(1).unsqueeze(0))
    return dist_neg.max(dim=-1).indices


def kmeans(samples: Tensor, num_clusters: int, num_iters: int,
           generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means from ``num_clusters`` random samples; empty clusters keep their previous centre.

    Args:
        samples: ``[N, D]`` float.
        num_clusters: ``C``.
        num_iters: assignment/update rounds.

    Returns:
        ``(means [C, D], counts [C])`` with the counts of the last assignment.
    """
    means = sample_vectors(samples, num_clusters, generator)
    counts = torch.zeros(num_clusters, dtype=torch.long, device=samples.device)
    for _ in range(num_iters):
        buckets = nearest(samples, means)
        counts = torch.bincount(buckets, minlength=num_clusters)
        sums = torch.zeros_like(means).index_add_(0, buckets, samples)
        new_means = sums / counts.clamp(min=1).unsqueeze(1).to(samples.dtype)
        means = torch.where((counts == 0).unsqueeze(1), means, new_means)
    return means, counts


class EuclideanCodebook(nn.Module):
    """One EMA codebook of ``bins`` vectors of size ``dim`` (buffers only: nothing here gets gradients)."""

    def __init__(self, dim: int, bins: int, cfg: CodecConfig) -> None:
        super().__init__()
        self.bins, self.cfg = bins, cfg
        embed = torch.zeros(bins, dim) if cfg.kmeans_init else nn.init.kaiming_uniform_(torch.empty(bins, dim))
        self.register_buffer("inited", torch.tensor([float(not cfg.kmeans_init)]))
        self.register_buffer("cluster_size", torch.zeros(bins))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def quantize(self, x: Tensor) -> Tensor:
        """Codes ``[N]`` of ``x [N, D]``."""
        return nearest(x.float(), self.embed)

    def dequantize(self, codes: Tensor) -> Tensor:
        """Rows ``[..., D]`` of ``codes [...]``."""
        return F.embedding(codes, self.embed)

    @torch.no_grad()
    def init_embed_(self, x: Tensor, generator: torch.Generator | None) -> bool:
        """k-means initialisation from ``x [N, D]`` (once); True when it ran now."""
        if bool(self.inited):
            return False
        means, counts = kmeans(x.float(), self.bins, self.cfg.kmeans_iters, generator)
        self.embed.copy_(means)
        self.embed_avg.copy_(means)
        self.cluster_size.copy_(counts.to(self.cluster_size.dtype))
        self.inited.fill_(1.0)
        _broadcast(self.embed, self.embed_avg, self.cluster_size)
        return True

    @torch.no_grad()
    def expire_codes_(self, x: Tensor, generator: torch.Generator | None) -> None:
        """Replace codes whose EMA count is below the threshold by random vectors of ``x [N, D]``."""
        threshold = self.cfg.threshold_ema_dead_code
        dead = self.cluster_size < threshold
        if threshold <= 0 or not bool(dead.any()):
            return
        fresh = sample_vectors(x.float(), self.bins, generator)
        mask = dead.unsqueeze(1)
        self.embed.copy_(torch.where(mask, fresh, self.embed))
        self.embed_avg.copy_(torch.where(mask, fresh * threshold, self.embed_avg))
        self.cluster_size.copy_(torch.where(dead, torch.full_like(self.cluster_size, threshold), self.cluster_size))
        _broadcast(self.embed, self.embed_avg, self.cluster_size)

    @torch.no_grad()
    def ema_update_(self, x: Tensor, codes: Tensor) -> None:
        """EMA of the per-code counts and sums for the assignment ``codes [N]`` of ``x [N, D]``."""
        d, eps = self.cfg.decay, self.cfg.epsilon
        counts = torch.bincount(codes, minlength=self.bins).to(x.dtype)
        sums = torch.zeros_like(self.embed_avg).index_add_(0, codes, x.float())
        counts, sums = _mean_over_ranks(counts), _mean_over_ranks(sums)
        self.cluster_size.mul_(d).add_(counts, alpha=1 - d)
        self.embed_avg.mul_(d).add_(sums, alpha=1 - d)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + eps) / (total + self.bins * eps) * total
        self.embed.copy_(self.embed_avg / smoothed.unsqueeze(1))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Quantize ``x [N, D]`` -> ``(rows [N, D] from the pre-update codebook, codes [N])``; updates the
        buffers in training mode (see the module docstring)."""
        # a non-finite batch (the loop then skips the optimizer step) must not poison the buffers for good
        update = self.training and _all_ranks(torch.isfinite(x).all())
        # right after k-means the counts are one batch's, not averages: expiry waits for the next batch
        if update and not self.init_embed_(x, generator):
            self.expire_codes_(x, generator)
        codes = self.quantize(x)
        rows = self.dequantize(codes).to(x.dtype)
        if update:
            self.ema_update_(x.detach().float(), codes)
        return rows, codes


class VectorQuantization(nn.Module):
    """One RVQ level on channel-first latents ``[B, D, T]`` (key ``_codebook.*``)."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self._codebook = EuclideanCodebook(cfg.dimension, cfg.bins, cfg)

    def encode(self, x: Tensor) -> Tensor:
        """``[B, D, T] -> codes [B, T]``."""
        b, d, t = x.shape
        return self._codebook.quantize(x.transpose(1, 2).reshape(b * t, d)).view(b, t)

    def decode(self, codes: Tensor) -> Tensor:
        """``codes [B, T] -> [B, D, T]``."""
        return self._codebook.dequantize(codes).transpose(1, 2)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``x [B, D, T] -> (quantized [B, D, T] (straight-through in training), codes [B, T], commitment [])``."""
        b, d, t = x.shape
        flat = x.transpose(1, 2).reshape(b * t, d)
        rows, codes = self._codebook(flat, generator)
        quantized = rows.view(b, t, d).transpose(1, 2)
        commitment = x.new_zeros(())
        if self.training:
            commitment = F.mse_loss(x, quantized.detach())
            quantized = x + (quantized - x).detach()
        return quantized, codes.view(b, t), commitment


class _ResidualLayers(nn.Module):
    """Holds the levels as ``layers`` (audiocraft's ``ResidualVectorQuantization``, key ``vq.layers.{k}``)."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(VectorQuantization(cfg) for _ in range(cfg.num_codebooks))


@dataclass
class QuantizerOutput:
    """Result of :meth:`ResidualVectorQuantizer.forward`.

    Attributes:
        quantized: ``[B, D, T]`` sum of the levels' rows (straight-through to the input in training).
        codes: ``[B, K, T]`` long.
        commitment: scalar mean over levels of ``mse(residual, sg(row))`` (0 in eval mode).
    """

    quantized: Tensor
    codes: Tensor
    commitment: Tensor


class ResidualVectorQuantizer(nn.Module):
    """``K`` levels, each quantizing the residual of the previous ones (key prefix ``vq.layers.{k}``)."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.vq = _ResidualLayers(cfg)

    @property
    def levels(self) -> list[VectorQuantization]:
        """The ``K`` quantizer levels."""
        return list(self.vq.layers)  # type: ignore[arg-type]

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> QuantizerOutput:
        """Quantize ``x [B, D, T]`` (updating the codebooks in training mode)."""
        residual, total = x, torch.zeros_like(x)
        codes, losses = [], []
        for level in self.levels:
            q, c, loss = level(residual, generator)
            residual = residual - q
            total = total + q
            codes.append(c)
            losses.append(loss)
        return QuantizerOutput(total, torch.stack(codes, dim=1), torch.stack(losses).mean())

    def encode(self, x: Tensor) -> Tensor:
        """``x [B, D, T] -> codes [B, K, T]`` (no buffer changes)."""
        residual, codes = x, []
        for level in self.levels:
            c = level.encode(residual)
            residual = residual - level.decode(c).to(residual.dtype)
            codes.append(c)
        return torch.stack(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        """``codes [B, K, T] -> [B, D, T]``: the sum over levels of the selected codebook rows."""
        levels = self.levels
        out = levels[0].decode(codes[:, 0])
        for k in range(1, codes.shape[1]):
            out = out + levels[k].decode(codes[:, k])
        return out
