"""ScaledAdam and the Eden2 learning-rate schedule (Flow2GAN's optimiser, described in spec C.3).

ScaledAdam is Adam with updates *relative to each tensor's RMS*: a non-scalar tensor ``p`` moves by
``lr * rms(p) * g / sqrt(v)``, and every ``size_update_period`` steps a separate learned step adjusts its
overall scale.  Gradients are clipped against a running median of recent gradient norms.  This is a fresh
implementation from the published description (per tensor, not batched over same-shape tensors).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["Eden2", "ScaledAdam", "eden2_factor"]


class ScaledAdam(Optimizer):
    """Adam variant with RMS-relative updates, learned parameter scale and median-based clipping.

    Args:
        params: parameters or parameter groups.
        lr: base learning rate (Flow2GAN uses 0.035 for stage 1).
        betas: ``(beta1, beta2)`` for momentum and the second moment.
        scalar_lr_scale: factor on ``lr`` for scalars and for the scale ("size") steps.
        eps: added to the root second moment.
        param_min_rms, param_max_rms: bounds on a tensor's RMS used for scaling / growth.
        scalar_max: scalars are clamped to ``[-scalar_max, scalar_max]``.
        size_update_period: steps between scale updates (and RMS refreshes).
        clipping_scale: clip the RMS-weighted gradient norm at ``clipping_scale * median`` of recent
            norms (None: no clipping).
        clipping_update_period: number of recent norms kept; the threshold is re-estimated this often.
        clip_per_group: keep a separate norm history and threshold for every parameter group (for a
            generator and a discriminator stepped by one optimizer, as two separate ScaledAdams would).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 3e-2,
        betas: tuple[float, float] = (0.9, 0.98),
        scalar_lr_scale: float = 0.1,
        eps: float = 1e-8,
        param_min_rms: float = 1e-5,
        param_max_rms: float = 3.0,
        scalar_max: float = 10.0,
        size_update_period: int = 4,
        clipping_scale: float | None = None,
        clipping_update_period: int = 100,
        clip_per_group: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, scalar_lr_scale=scalar_lr_scale, eps=eps, param_min_rms=param_min_rms,
                        param_max_rms=param_max_rms, scalar_max=scalar_max, size_update_period=size_update_period)
        super().__init__(params, defaults)
        self.clipping_scale = clipping_scale
        self.clipping_update_period = clipping_update_period
        self.clip_per_group = clip_per_group
        sets = len(self.param_groups) if clip_per_group else 1
        self.norm_histories: list[list[float]] = [[] for _ in range(sets)]
        self.clip_thresholds: list[float] = [math.inf] * sets
        self.num_steps = 0

    @property
    def norm_history(self) -> list[float]:
        """Recent gradient norms (of the first clipping set)."""
        return self.norm_histories[0]

    @property
    def clip_threshold(self) -> float:
        """Current clipping threshold (of the first clipping set)."""
        return self.clip_thresholds[0]

    # ------------------------------------------------------------------------------- clipping
    def _clip_sets(self) -> list[list[dict]]:
        """Parameter groups clipped together: all of them, or each on its own."""
        return [[g] for g in self.param_groups] if self.clip_per_group else [list(self.param_groups)]

    def _grad_norm(self, groups: list[dict]) -> float:
        """Norm of the gradients weighted by each tensor's RMS (scalars by ``scalar_lr_scale``)."""
        total = 0.0
        for group in groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g2 = float(p.grad.float().pow(2).sum())
                if p.numel() == 1:
                    total += g2 * group["scalar_lr_scale"] ** 2
                else:
                    rms = self.state[p].get("param_rms")
                    rms = float(rms) if rms is not None else max(float(p.detach().float().pow(2).mean().sqrt()),
                                                                  group["param_min_rms"])
                    total += g2 * rms**2
        return math.sqrt(total)

    def _clip_factors(self) -> list[float]:
        """Gradient multiplier per clipping set (1.0 when not clipping; 0.0 for a non-finite norm)."""
        sets = self._clip_sets()
        if self.clipping_scale is None:
            return [1.0] * len(sets)
        return [self._clip_factor(i, groups) for i, groups in enumerate(sets)]

    def _clip_factor(self, i: int, groups: list[dict]) -> float:
        norm = self._grad_norm(groups)
        if not math.isfinite(norm):
            return 0.0
        if norm == 0.0:  # no gradients in this set this step (e.g. a generator waiting for its start)
            return 1.0
        history = self.norm_histories[i] = (self.norm_histories[i] + [norm])[-self.clipping_update_period:]
        step = self.num_steps
        median = sorted(history)[len(history) // 2]
        if step in (10, 20, 40):  # early, looser estimates
            self.clip_thresholds[i] = 2.0 * self.clipping_scale * median
        elif step > 0 and step % self.clipping_update_period == 0:
            self.clip_thresholds[i] = self.clipping_scale * median
        return min(1.0, self.clip_thresholds[i] / norm)

    # ----------------------------------------------------------------------------------- step
    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch Optimizer signature
        """One update of every parameter with a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        factors = self._clip_factors()
        for k, group in enumerate(self.param_groups):
            factor = factors[k if self.clip_per_group else 0]
            for p in group["params"]:
                if p.grad is None:
                    continue
                # a non-finite norm zeroes the gradients (multiplying NaN by 0 would not)
                grad = p.grad.float() * factor if factor > 0 else torch.zeros_like(p.grad, dtype=torch.float32)
                if p.numel() == 1:
                    self._scalar_step(p, grad, group)
                else:
                    self._tensor_step(p, grad, group)
        self.num_steps += 1
        return loss

    def _second_moment(self, state: dict, grad: Tensor, group: dict) -> Tensor:
        """Update ``exp_avg_sq`` and return the bias-corrected root, plus eps: ``[same shape as grad]``."""
        beta2 = group["betas"][1]
        step = state.setdefault("step", 0)
        v = state.setdefault("exp_avg_sq", torch.zeros_like(grad))
        v.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        bias = 1.0 - beta2 ** (step + 1)
        return (v / bias if bias < 0.99 else v).sqrt().add_(group["eps"])

    def _apply_momentum(self, p: Tensor, state: dict, update: Tensor, group: dict) -> None:
        beta1 = group["betas"][0]
        delta = state.setdefault("delta", torch.zeros_like(update))
        delta.mul_(beta1).add_(update, alpha=1.0 - beta1)
        p.add_(delta.to(p.dtype))
        state["step"] += 1

    def _scalar_step(self, p: Tensor, grad: Tensor, group: dict) -> None:
        state = self.state[p]
        denom = self._second_moment(state, grad, group)
        update = -group["lr"] * group["scalar_lr_scale"] * grad / denom
        self._apply_momentum(p, state, update, group)
        p.clamp_(-group["scalar_max"], group["scalar_max"])

    def _tensor_step(self, p: Tensor, grad: Tensor, group: dict) -> None:
        state = self.state[p]
        period = group["size_update_period"]
        step = state.get("step", 0)
        pf = p.detach().float()
        if "param_rms" not in state:
            state["param_rms"] = pf.pow(2).mean().sqrt()
        scale_grads = state.setdefault("scale_grads", torch.zeros(period, device=p.device))
        scale_grads[step % period] = (pf * grad).sum()
        size_step = None
        if step % period == period - 1:  # refresh the RMS, then (after the first period) learn the scale
            state["param_rms"] = pf.pow(2).mean().sqrt()
            if step > 0:
                size_step = self._size_step(state, scale_grads, group)
        denom = self._second_moment(state, grad, group)
        update = -group["lr"] * state["param_rms"].clamp(min=group["param_min_rms"]) * grad / denom
        if size_step is not None:
            update = update + pf * size_step
        self._apply_momentum(p, state, update, group)

    def _size_step(self, state: dict, scale_grads: Tensor, group: dict) -> Tensor:
        """Relative change of the tensor's overall scale (a 0-d tensor), from the last period's
        ``sum(p * g)`` values ``scale_grads [period]``: Adam on ``log(scale)`` with ``beta2 ** period``.

        The step is at most ``lr * scalar_lr_scale * period`` in magnitude; a tensor whose RMS is below
        ``param_min_rms`` is not shrunk, one above ``param_max_rms`` is shrunk by the maximum step.
        """
        period, beta2 = group["size_update_period"], group["betas"][1]
        size_lr = group["lr"] * group["scalar_lr_scale"]
        beta2p = beta2**period
        n = state.get("size_steps", 0) + 1
        s = state.setdefault("scale_exp_avg_sq", torch.zeros((), device=scale_grads.device))
        s.mul_(beta2p).add_(scale_grads.pow(2).mean(), alpha=1.0 - beta2p)
        bias = 1.0 - beta2p**n
        step = -size_lr * bias**0.5 * scale_grads.sum() / (s.sqrt() + group["eps"])
        rms = state["param_rms"]
        if rms < group["param_min_rms"]:
            step = step.clamp(min=0.0)
        elif rms > group["param_max_rms"]:
            step = torch.full_like(step, -size_lr * period)
        state["size_steps"] = n
        return step

    def state_dict(self) -> dict:
        """Optimizer state plus the clipping history."""
        sd = super().state_dict()
        sd["clipping"] = {"norm_histories": [list(h) for h in self.norm_histories],
                          "thresholds": list(self.clip_thresholds), "num_steps": self.num_steps}
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict` output."""
        state_dict = dict(state_dict)
        clip = state_dict.pop("clipping", None)
        super().load_state_dict(state_dict)
        if clip is not None:
            if "norm_history" in clip:  # single-set format of earlier checkpoints
                clip = {"norm_histories": [clip["norm_history"]], "thresholds": [clip["threshold"]], **clip}
            self.norm_histories = [list(h) for h in clip["norm_histories"]]
            self.clip_thresholds = [float(t) for t in clip["thresholds"]]
            self.num_steps = int(clip["num_steps"])


def eden2_factor(batch: int, lr_batches: float, warmup_batches: float = 500.0, warmup_start: float = 0.1) -> float:
    """Eden2 multiplier: ``((b^2 + B^2) / B^2)^(-1/2)`` times a linear warm-up from ``warmup_start`` to 1."""
    decay = ((batch**2 + lr_batches**2) / lr_batches**2) ** -0.5
    warmup = 1.0 if batch >= warmup_batches else warmup_start + (1.0 - warmup_start) * batch / warmup_batches
    return decay * warmup


class Eden2(LRScheduler):
    """The Eden2 schedule, stepped once per optimizer step (batch).

    Args:
        optimizer: the wrapped optimizer (its group ``lr`` is the base rate).
        lr_batches: ``B`` in the decay formula (Flow2GAN: 7500 for stage 1), or one value per parameter
            group (stage 2 decays the generator with 20000 and the discriminator with 5000).
        warmup_batches: length of the linear warm-up in steps.
        warmup_start: warm-up starting factor.
    """

    def __init__(self, optimizer: Optimizer, lr_batches: float | Sequence[float], warmup_batches: float = 500.0,
                 warmup_start: float = 0.1, last_epoch: int = -1) -> None:
        n = len(optimizer.param_groups)
        per_group = [float(lr_batches)] * n if isinstance(lr_batches, (int, float)) else [float(b) for b in lr_batches]
        if len(per_group) != n:
            raise ValueError(f"lr_batches has {len(per_group)} values for {n} parameter groups")
        self.lr_batches, self.warmup_batches, self.warmup_start = per_group, warmup_batches, warmup_start
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Learning rates for step ``self.last_epoch`` (= batches seen)."""
        b = max(self.last_epoch, 0)
        return [base * eden2_factor(b, lb, self.warmup_batches, self.warmup_start)
                for base, lb in zip(self.base_lrs, self.lr_batches)]
