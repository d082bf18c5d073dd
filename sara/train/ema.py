"""Exponential moving average of model weights, kept in float32 on the model's device."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

__all__ = ["EMA"]


class EMA:
    """EMA of every floating-point tensor in the state dict (parameters and float buffers such as
    BatchNorm running statistics); integer buffers are left to the live model.

    The effective decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates so early
    averages are not dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {
            k: v.detach().float().clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the current weights of ``model`` into the average."""
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1.0 - d)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (in place)."""
        state = model.state_dict()
        for k, v in self.shadow.items():
            state[k].copy_(v.to(state[k].dtype))

    def averaged_copy(self, model: nn.Module) -> nn.Module:
        """A deep copy of ``model`` holding the averaged weights, in eval mode."""
        clone = copy.deepcopy(model)
        self.copy_to(clone)
        return clone.eval()

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors to save (``num_updates`` travels in the trainer state)."""
        return {k: v.cpu() for k, v in self.shadow.items()}

    def load_state_dict(self, state: dict[str, Tensor], num_updates: int) -> None:
        """Restore from :meth:`state_dict`; keys must match."""
        if set(state) != set(self.shadow):
            raise KeyError("EMA state does not match the model's parameters")
        for k, v in state.items():
            self.shadow[k].copy_(v)
        self.num_updates = num_updates
