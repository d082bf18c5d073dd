"""audiocraft's loss balancer (``audiocraft/losses/balancer.py``) as a checkpointed module.

Given losses ``l_i(y)`` of one model output ``y``, the balanced gradient sent into ``y`` is

    G = sum_i  total_norm * w_i / sum(w) * g_i / (eps + avg ||g_i||),      g_i = d l_i / d y,

where ``||g_i||`` is the per-item L2 norm averaged over the batch and ``avg`` is a bias-corrected EMA
(flashy's ``averager``: ``avg = S / N`` with ``S <- beta S + ||g||``, ``N <- beta N + 1``).  The weights thus
set each loss's share of the gradient regardless of its scale.  With ``balance_grads=False`` it is the plain
weighted sum ``sum_i w_i g_i`` (the documented alternative: fixed weights).

Instead of calling ``y.backward(G)`` itself (audiocraft), :meth:`LossBalancer.surrogate` returns a scalar whose
gradient w.r.t. ``y`` is ``G`` and whose value is the effective loss ``sum_i scale_i l_i``, so the shared loop's
single backward does the rest.  The EMA state lives in float64 buffers (checkpointed, hence resumable).
Under ``torch.distributed`` the norms are averaged over ranks before entering the EMA (audiocraft's
``average_metrics``), so every rank uses the same scales.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributed as dist
from torch import Tensor, autograd, nn

__all__ = ["LossBalancer"]


class LossBalancer(nn.Module):
    """Gradient-norm balancing of named losses w.r.t. one output tensor.

    Args:
        weights: loss name -> weight (audiocraft solver defaults: ``adv 4, feat 4, l1 0.1, msspec 2``).
        balance_grads: normalise each gradient by its average norm (False: plain weighted sum).
        total_norm: reference norm of the balanced gradient.
        ema_decay: decay of the norm averages.
        per_batch_item: norms per batch item, then averaged (else one norm over the batch).
        epsilon: added to the averaged norms.
    """

    def __init__(self, weights: Mapping[str, float], *, balance_grads: bool = True, total_norm: float = 1.0,
                 ema_decay: float = 0.999, per_batch_item: bool = True, epsilon: float = 1e-12) -> None:
        super().__init__()
        if not weights or sum(weights.values()) <= 0 or min(weights.values()) < 0:
            raise ValueError(f"balancer weights must be non-negative with a positive sum, got {dict(weights)}")
        self.names = tuple(weights)
        self.weights = dict(weights)
        self.balance_grads, self.total_norm, self.decay = balance_grads, total_norm, ema_decay
        self.per_batch_item, self.epsilon = per_batch_item, epsilon
        self.register_buffer("norm_sum", torch.zeros(len(self.names), dtype=torch.float64))
        self.register_buffer("norm_count", torch.zeros(len(self.names), dtype=torch.float64))

    def _norm(self, grad: Tensor) -> Tensor:
        if self.per_batch_item:
            return grad.flatten(1).norm(dim=1).mean()
        return grad.norm()

    @torch.no_grad()
    def _average_norms(self, norms: Tensor) -> Tensor:
        """Update the EMA with ``norms [n]`` and return the bias-corrected averages ``[n]``."""
        norms = norms.to(torch.float64)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(norms)
            norms /= dist.get_world_size()
        if not bool(torch.isfinite(norms).all()):  # a non-finite step (skipped by the loop) is not averaged in
            return self.norm_sum / self.norm_count.clamp(min=1e-12)
        self.norm_sum.mul_(self.decay).add_(norms)
        self.norm_count.mul_(self.decay).add_(1.0)
        return self.norm_sum / self.norm_count

    def scales(self, grads: Mapping[str, Tensor]) -> dict[str, float]:
        """Per-loss gradient multipliers for the partial gradients ``grads`` (updates the EMA when balancing)."""
        if not self.balance_grads:
            return {k: self.weights[k] for k in grads}
        norms = torch.stack([self._norm(grads[k]).detach() for k in self.names])
        avg = self._average_norms(norms)
        total_weight = sum(self.weights.values())
        return {k: self.weights[k] / total_weight * self.total_norm / (self.epsilon + float(avg[i]))
                for i, k in enumerate(self.names)}

    def surrogate(self, losses: Mapping[str, Tensor], output: Tensor) -> tuple[Tensor, dict[str, float]]:
        """A scalar with value ``sum_i scale_i l_i`` and gradient w.r.t. ``output`` equal to the balanced ``G``.

        Args:
            losses: one scalar per name in ``weights`` (all must depend on ``output``).
            output: the model output ``y`` the losses are computed from (e.g. ``[B, 1, T]``).

        Returns:
            ``(surrogate loss, scales)``; back-propagating the surrogate sends ``G`` into the model.
        """
        if set(losses) != set(self.names):
            raise ValueError(f"balancer expects losses {sorted(self.names)}, got {sorted(losses)}")
        grads = {k: autograd.grad(losses[k], [output], retain_graph=True)[0] for k in self.names}
        scales = self.scales(grads)
        gradient = sum(scales[k] * grads[k] for k in self.names)
        assert isinstance(gradient, Tensor)
        linear = (output * gradient.detach()).sum()
        effective = sum(scales[k] * losses[k].detach() for k in self.names)
        return linear - linear.detach() + effective, scales
