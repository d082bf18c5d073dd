"""Classifier-free-guided sampling of UNet latents, with Tango's semantics (``AudioDiffusion.inference``).

Per step ``t`` of ``scheduler.timesteps``: the model input is ``[x; x]`` (unconditional rows first) when
guiding, passed through ``scheduler.scale_model_input``; the UNet's outputs are split ``(u, c)`` and guided as
``u + w (c - u)``; the scheduler then moves ``x`` to the previous timestep.  The initial noise is multiplied
by ``scheduler.init_noise_sigma`` (1 for all four samplers on Tango's schedule, as in ``prepare_latents``).

DDPM is ancestral: every step with ``t > 0`` adds ``sqrt(var_t) * noise`` (variance ``fixed_small``).  sara
performs that update itself from the scheduler's own quantities (``alphas_cumprod``, ``previous_timestep``,
``_get_variance``), the same expressions in the same order as ``DDPMScheduler.step``, so the noise can be
supplied: ``step_noise[i]`` is the noise of step ``i``.  With ``step_noise`` equal to what a seeded generator
would draw, the result equals diffusers' ``DDPMScheduler.step`` with that generator (tested), so a run can
be reproduced against another implementation.  Without ``step_noise`` the noise comes from ``generator``
exactly as ``DDPMScheduler.step`` draws it.  DDIM (eta 0), DPM-Solver++ and UniPC are deterministic and
ignore ``step_noise`` and ``generator``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from sara.errors import ConfigError

__all__ = ["TextCondition", "ddpm_step", "guided_prediction", "sample_latents"]

TextCondition = tuple[Tensor, Tensor]  # (states [B, L, D] float, mask [B, L] bool)


@torch.no_grad()
def sample_latents(unet: Any, scheduler: Any, cond: TextCondition, uncond: TextCondition | None, latents: Tensor,
                   steps: int, guidance_scale: float, step_noise: Tensor | None = None,
                   generator: torch.Generator | None = None, progress: bool = False,
                   unet_kwargs: Mapping[str, Any] | None = None) -> Tensor:
    """Denoise ``latents`` from pure noise to a clean latent.

    Args:
        unet: a diffusers ``UNet2DConditionModel`` (or a wrapper with its forward signature).
        scheduler: a diffusers scheduler (:func:`~sara.ldm.schedulers.make_scheduler`); its timesteps are set here.
        cond: text condition ``(states [B, L, D], mask [B, L] bool)``.
        uncond: unconditional input ``(states [1 or B, L', D], mask)``, required iff ``guidance_scale > 1``;
            different lengths are padded with masked zeros (exactly neutral).
        latents: initial noise ``[B, C, H, W]`` (unit variance; scaled by ``init_noise_sigma`` here).
        steps: sampler steps (>= 1).
        guidance_scale: ``w``; <= 1 runs the conditional branch only (no unconditional batch).
        step_noise: DDPM only: ``[steps, B, C, H, W]`` per-step variance noise.
        generator: DDPM only: the variance noise's source when ``step_noise`` is None.
        progress: show a progress bar (every step is also reported to :func:`sara.progress.report`).
        unet_kwargs: extra keyword arguments for every UNet call (a wrapper's extra condition); when guiding,
            batched like the model input (``2B`` rows, unconditional first).

    Returns:
        ``[B, C, H, W]`` latents in diffusion space (the VAE's ``decode`` divides by its scale factor).

    Raises:
        ConfigError: invalid steps, guidance, latents, conditions or step_noise shape.
    """
    from tqdm.auto import tqdm

    from sara.progress import report

    guided = _check_inputs(cond, uncond, latents, steps, guidance_scale)
    timesteps = _set_timesteps(scheduler, steps, latents.device)
    ddpm = _is_ddpm(scheduler)
    if ddpm and step_noise is not None:
        _check_step_noise(step_noise, len(timesteps), latents)
    states, mask = _context(cond, uncond if guided else None)
    x = latents * scheduler.init_noise_sigma
    for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="sampling", leave=False)):
        out = guided_prediction(unet, scheduler, x, t, states, mask, guidance_scale if guided else None,
                                unet_kwargs)
        if ddpm:
            noise = step_noise[i].to(x) if step_noise is not None else None
            x = ddpm_step(scheduler, out, t, x, noise=noise, generator=generator)
        else:
            x = scheduler.step(out, t, x).prev_sample
        report("diffusion", i + 1, len(timesteps))
    return x


def _set_timesteps(scheduler: Any, steps: int, device: torch.device) -> Tensor:
    """Set and return the scheduler's ``steps`` timesteps (ConfigError unless ``steps`` < the training steps:
    with ``steps_offset`` 1 the first timestep would otherwise be 1000, outside the schedule)."""
    if steps >= scheduler.config.num_train_timesteps:
        raise ConfigError(f"steps must be < {scheduler.config.num_train_timesteps} (the training timesteps), "
                          f"got {steps}")
    scheduler.set_timesteps(steps, device=device)
    return scheduler.timesteps


def guided_prediction(unet: Any, scheduler: Any, x: Tensor, t: Tensor, states: Tensor, mask: Tensor,
                      guidance_scale: float | None, unet_kwargs: Mapping[str, Any] | None = None) -> Tensor:
    """The (guided) UNet output at ``x [B, C, H, W]``, timestep ``t``.

    Args:
        states / mask: ``[2B, L, D]`` / ``[2B, L]`` (unconditional rows first) when ``guidance_scale`` is given,
            else ``[B, L, D]`` / ``[B, L]``.
        guidance_scale: ``w`` for ``u + w (c - u)``; None = conditional only.

    Returns:
        ``[B, C, H, W]`` in ``x``'s dtype.
    """
    inp = torch.cat([x, x]) if guidance_scale is not None else x
    inp = scheduler.scale_model_input(inp, t)
    dtype = _param_dtype(unet)
    out = unet(inp.to(dtype), t, encoder_hidden_states=states.to(dtype), encoder_attention_mask=mask,
               **dict(unet_kwargs or {})).sample.to(x.dtype)
    if guidance_scale is None:
        return out
    uncond_out, cond_out = out.chunk(2)
    return uncond_out + guidance_scale * (cond_out - uncond_out)


def ddpm_step(scheduler: Any, model_output: Tensor, t: Tensor | int, sample: Tensor,
              noise: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    """One ancestral DDPM step ``x_t -> x_{t-1}`` with explicit variance noise.

    The same expressions, in the same order, as diffusers' ``DDPMScheduler.step`` (fixed_small variance):
    x0 from the prediction, the posterior mean, plus ``sqrt(_get_variance(t)) * noise`` for ``t > 0``.

    Args:
        scheduler: a ``DDPMScheduler`` after ``set_timesteps``.
        model_output: UNet prediction ``[B, C, H, W]`` (v or epsilon, per ``scheduler.config``).
        t: the current timestep.
        sample: ``x_t [B, C, H, W]``.
        noise: ``[B, C, H, W]`` standard normal noise; None draws it from ``generator`` like diffusers does.

    Returns:
        ``x_{t-1} [B, C, H, W]``.
    """
    t = int(t)
    prev_t = int(scheduler.previous_timestep(t))
    alpha_prod_t = scheduler.alphas_cumprod[t]
    alpha_prod_t_prev = scheduler.alphas_cumprod[prev_t] if prev_t >= 0 else scheduler.one
    beta_prod_t, beta_prod_t_prev = 1 - alpha_prod_t, 1 - alpha_prod_t_prev
    current_alpha_t = alpha_prod_t / alpha_prod_t_prev
    current_beta_t = 1 - current_alpha_t
    x0 = _predict_x0(scheduler, model_output, sample, alpha_prod_t, beta_prod_t)
    x0_coeff = (alpha_prod_t_prev ** (0.5) * current_beta_t) / beta_prod_t
    sample_coeff = current_alpha_t ** (0.5) * beta_prod_t_prev / beta_prod_t
    prev = x0_coeff * x0 + sample_coeff * sample
    if t > 0:
        if noise is None:
            from diffusers.utils.torch_utils import randn_tensor

            noise = randn_tensor(model_output.shape, generator=generator, device=model_output.device,
                                 dtype=model_output.dtype)
        prev = prev + (scheduler._get_variance(t) ** 0.5) * noise
    return prev


def _predict_x0(scheduler: Any, model_output: Tensor, sample: Tensor, alpha_prod_t: Tensor,
                beta_prod_t: Tensor) -> Tensor:
    """``x0`` from a v- or epsilon-prediction (clipped when the schedule says so)."""
    kind = scheduler.config.prediction_type
    if kind == "v_prediction":
        x0 = (alpha_prod_t**0.5) * sample - (beta_prod_t**0.5) * model_output
    elif kind == "epsilon":
        x0 = (sample - beta_prod_t ** (0.5) * model_output) / alpha_prod_t ** (0.5)
    else:
        raise ConfigError(f"DDPM sampling supports v_prediction and epsilon, not {kind!r}")
    if scheduler.config.clip_sample:
        x0 = x0.clamp(-scheduler.config.clip_sample_range, scheduler.config.clip_sample_range)
    return x0


def _is_ddpm(scheduler: Any) -> bool:
    """True for a ``DDPMScheduler`` (checked to use the variance sara reproduces)."""
    from diffusers import DDPMScheduler

    if not isinstance(scheduler, DDPMScheduler):
        return False
    if scheduler.config.variance_type != "fixed_small" or scheduler.config.thresholding:
        raise ConfigError(f"DDPM sampling supports variance_type 'fixed_small' without thresholding, not "
                          f"{scheduler.config.variance_type!r} (thresholding={scheduler.config.thresholding})")
    return True


def _check_inputs(cond: TextCondition, uncond: TextCondition | None, latents: Tensor, steps: int,
                  guidance_scale: float) -> bool:
    """Validate the arguments; returns whether guidance (an unconditional branch) is used."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")
    if not isinstance(guidance_scale, (int, float)) or not math.isfinite(guidance_scale):
        raise ConfigError(f"guidance_scale must be a finite number, got {guidance_scale!r}")
    if latents.ndim != 4 or not bool(torch.isfinite(latents).all()):
        raise ConfigError(f"latents must be a finite [B, C, H, W] tensor, got shape {tuple(latents.shape)}")
    _check_condition(cond, "cond", latents.shape[0], exact=True)
    guided = guidance_scale > 1.0
    if guided:
        if uncond is None:
            raise ConfigError(f"guidance_scale {guidance_scale} > 1 needs an unconditional input (uncond)")
        _check_condition(uncond, "uncond", latents.shape[0], exact=False)
    return guided


def _check_condition(c: TextCondition, name: str, batch: int, exact: bool) -> None:
    states, mask = c
    if states.ndim != 3 or mask.shape != states.shape[:2] or mask.dtype != torch.bool:
        raise ConfigError(f"{name} must be (states [B, L, D], bool mask [B, L]); got {tuple(states.shape)}, "
                          f"{tuple(mask.shape)} {mask.dtype}")
    if states.shape[0] != batch and (exact or states.shape[0] != 1):
        raise ConfigError(f"{name} has batch {states.shape[0]}, the latents {batch}")


def _check_step_noise(step_noise: Tensor, steps: int, latents: Tensor) -> None:
    want = (steps, *latents.shape)
    if tuple(step_noise.shape) != want:
        raise ConfigError(f"step_noise must have shape {list(want)} ([steps, B, C, H, W]), "
                          f"got {list(step_noise.shape)}")
    if not bool(torch.isfinite(step_noise).all()):
        raise ConfigError("step_noise has non-finite values")


def _context(cond: TextCondition, uncond: TextCondition | None) -> TextCondition:
    """The UNet's text input: ``cond``, or ``[uncond; cond]`` (unconditional rows first) padded to one length."""
    if uncond is None:
        return cond
    batch = cond[0].shape[0]
    u_states, u_mask = uncond
    if u_states.shape[0] == 1 and batch > 1:
        u_states, u_mask = u_states.expand(batch, -1, -1), u_mask.expand(batch, -1)
    length = max(cond[0].shape[1], u_states.shape[1])
    u_states, u_mask = _pad(u_states.to(cond[0]), u_mask.to(cond[1].device), length)
    c_states, c_mask = _pad(*cond, length)
    return torch.cat([u_states, c_states]), torch.cat([u_mask, c_mask])


def _pad(states: Tensor, mask: Tensor, length: int) -> TextCondition:
    """Right-pad ``[B, L, D]`` / ``[B, L]`` to ``length`` with zeros / False (masked keys get no weight)."""
    extra = length - states.shape[1]
    if extra == 0:
        return states, mask
    states = torch.cat([states, states.new_zeros(states.shape[0], extra, states.shape[2])], dim=1)
    return states, torch.cat([mask, mask.new_zeros(mask.shape[0], extra)], dim=1)


def _param_dtype(module: Any) -> torch.dtype:
    try:
        return next(module.parameters()).dtype
    except (StopIteration, AttributeError):
        return torch.float32
