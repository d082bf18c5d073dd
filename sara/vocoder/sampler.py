"""Euler sampler of the waveform flow-matching ODE (stateless; spec B.2).

The network predicts the clean waveform ``x1`` from ``x_t``; the velocity used by the Euler step is
``v = (pred - x_t) / (1 - t)``.  Times are ``linspace(0, 1, steps + 1)[:-1]``, so the network is never
evaluated at ``t = 1`` and one step returns ``pred(x0, t=0)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sara.errors import AudioError, ConfigError

__all__ = ["PredictFn", "euler_sample", "initial_noise"]

# pred(x_t [B, L], t [B]) -> [B, L]
PredictFn = Callable[[Tensor, Tensor], Tensor]


def initial_noise(
    batch: int,
    num_samples: int,
    *,
    noise: Tensor | None = None,
    seed: int | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Standard-normal starting noise ``[batch, num_samples]`` (not yet scaled).

    Args:
        batch, num_samples: shape of the waveform batch.
        noise: use this tensor (checked for shape) instead of drawing.
        seed: draw from a CPU generator seeded with ``seed`` (reproducible on every device).
        device: where the result lives.

    Raises:
        ValueError: ``noise`` has the wrong shape.
    """
    if noise is not None:
        if tuple(noise.shape) != (batch, num_samples):
            raise AudioError(f"noise must have shape {(batch, num_samples)}, got {tuple(noise.shape)}")
        if not torch.isfinite(noise).all():
            raise AudioError("noise contains NaN or infinite values")
        return noise.to(device=device, dtype=torch.float32)
    if seed is not None and (isinstance(seed, bool) or int(seed) != seed or not 0 <= int(seed) < 2**63):
        raise ConfigError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    return torch.randn(batch, num_samples, generator=gen).to(device)


def euler_sample(
    predict: PredictFn,
    x0: Tensor,
    steps: int,
    *,
    pred_x1: bool = True,
    clamp: bool = True,
    callback: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """Integrate the flow ODE from ``x0`` (t = 0) to t = 1 with ``steps`` uniform Euler steps.

    Args:
        predict: the network, ``pred(x_t [B, L], t [B]) -> [B, L]``.
        x0: scaled initial noise ``[B, L]``.
        steps: number of network evaluations (>= 1).
        pred_x1: ``predict`` returns the clean signal (True) or the velocity (False).
        clamp: clamp the result to [-1, 1].
        callback: called as ``callback(step, x)`` after every step (progress reporting).

    Returns:
        ``[B, L]`` the sample at t = 1.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    t_span = torch.linspace(0.0, 1.0, steps + 1, device=x0.device)
    dt = t_span[1] - t_span[0]  # one constant step (as the official sampler), times from t_span
    x = x0
    for k in range(steps):
        t = t_span[k]
        pred = predict(x, t.expand(x.shape[0]))
        v = (pred - x) / (1.0 - t) if pred_x1 else pred
        x = x + v * dt
        if callback is not None:
            callback(k, x)
    return x.clamp(-1.0, 1.0) if clamp else x
