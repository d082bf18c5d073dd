"""Deepening a trained vocoder generator: extra ConvNeXt blocks per branch that start as the identity.

A stage-2 run can continue a small released vocoder at a larger depth (``sara train vocoder --stage gan
--init V --num-layers 6 6 6``).  The new blocks are appended after each branch's trained blocks with a zero
output projection (``pwconv2``) and a unit skip scale, so the deepened generator computes exactly what the
released one did until training moves them (sara extension; Flow2GAN trains every depth from scratch).

ScaledAdam scales each update by its tensor's RMS, so a tensor that starts at zero would never move:
:func:`grown_min_rms` gives the RMS floor the optimiser uses for the new blocks instead (that of the trained
blocks' output projections).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from sara.vocoder.model import VocoderGenerator

__all__ = ["check_deepening", "deepen_generator", "grown_min_rms", "grown_parameters"]


def check_deepening(base: tuple[int, ...], target: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``target`` keeps the branch count and is at least ``base`` in every branch
    (a branch without trained blocks has none to start new ones from)."""
    if len(target) != len(base) or any(t < b or (t > b == 0) for t, b in zip(target, base)):
        raise ValueError(f"num_layers {list(target)} cannot deepen a generator with {list(base)} blocks per branch "
                         "(one depth per branch, none smaller than the trained one; a branch without blocks "
                         "stays so)")


def deepen_generator(generator: VocoderGenerator, num_layers: tuple[int, ...]) -> VocoderGenerator:
    """A new generator with ``num_layers`` blocks per branch that computes exactly what ``generator`` does.

    The trained weights are copied; each branch's extra blocks come after its trained ones.  Extra block
    ``j`` of a branch with ``n`` trained blocks starts as a copy of trained block ``j mod n`` (so its hidden
    activations have a trained block's scale, and no two new blocks start equal), except that ``pwconv2``
    (weight and bias) is zero and the skip scale 1: the identity.  With random hidden layers instead, the
    first updates of the zero projection meet activations far larger than trained ones and the mel loss
    of the demo vocoder rose by half within 60 steps.
    """
    base = tuple(generator.cfg.num_layers)
    check_deepening(base, tuple(num_layers))
    cfg = dataclasses.replace(generator.cfg, num_layers=tuple(num_layers))
    deeper = VocoderGenerator(cfg)
    missing, unexpected = deeper.load_state_dict(generator.state_dict(), strict=False)
    assert not unexpected, unexpected
    with torch.no_grad():
        for est, n in zip(deeper.estimators, base):
            blocks = list(est.decoder.blocks)
            for j, block in enumerate(blocks[n:]):
                block.load_state_dict(blocks[j % n].state_dict())
        for block in _new_blocks(deeper, base):
            block.pwconv2.weight.zero_()
            block.pwconv2.bias.zero_()
            if block.residual_scale is not None:
                block.residual_scale.scale.fill_(1.0)
    return deeper


def _new_blocks(generator: VocoderGenerator, base: tuple[int, ...]) -> list[nn.Module]:
    """The blocks of each branch past its first ``base[i]``."""
    return [blk for est, n in zip(generator.estimators, base) for blk in list(est.decoder.blocks)[n:]]


def grown_parameters(generator: VocoderGenerator, base: tuple[int, ...]) -> list[nn.Parameter]:
    """Parameters of the blocks added by :func:`deepen_generator` (``base``: the depths before)."""
    return [p for blk in _new_blocks(generator, base) for p in blk.parameters()]


def grown_min_rms(generator: VocoderGenerator, base: tuple[int, ...]) -> float:
    """Median RMS of the trained blocks' ``pwconv2`` weights: ScaledAdam's RMS floor for the new blocks."""
    trained = [blk.pwconv2.weight.detach().float().pow(2).mean().sqrt()
               for est, n in zip(generator.estimators, base) for blk in list(est.decoder.blocks)[:n]]
    if not trained:
        raise ValueError("the generator has no trained blocks to take an RMS from")
    return float(torch.stack(trained).median())
