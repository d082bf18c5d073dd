"""Request bodies and their validation, with the same rules as ``sara generate`` / ``sara reconstruct``.

The numeric rules are the CLI's own argument types (:mod:`sara.cli._args`, bounds from
:mod:`sara.cli.generate`), applied to the request's values, so a value ``sara generate`` refuses is refused
here with the same message; the server's tighter :class:`~sara.serve.config.Limits` come on top.
Every failure is a :class:`~sara.errors.ConfigError` with one line, answered as 422.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from sara.cli._args import float_range, int_range, seed
from sara.cli.generate import MAX_DURATION_S, MAX_STEPS
from sara.errors import ConfigError
from sara.serve.config import Limits

__all__ = ["AudioFormat", "GenerateParams", "GenerateRequest", "ReconstructParams", "check_generate",
           "check_reconstruct", "check_sampling", "check_upload_size"]

AudioFormat = Literal["wav", "flac"]
_DURATION = float_range(0.0, MAX_DURATION_S, low_open=True)
_STEPS = int_range(1, MAX_STEPS)
_CFG = float_range(0.0, 100.0)


class GenerateRequest(BaseModel):
    """``POST /v1/generate`` body; omitted options take the model's defaults."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(description="text prompt", examples=["a dog barks in the rain"])
    negative_prompt: str | None = Field(None, description="caption for the unconditional branch")
    duration: float | None = Field(None, description="seconds (default: the model's)")
    steps: int | None = Field(None, description="sampling steps (default: the model's)")
    guidance: float | None = Field(None, description="classifier-free guidance scale, on iff > 1")
    vocoder_steps: int | None = Field(None, description="SARA vocoder Euler steps (default: the vocoder's)")
    seed: int | None = Field(None, description="random seed (default: drawn, and reported in the job)")
    model: str | None = Field(None, description="a name from GET /v1/models (default: the first)")
    format: AudioFormat = Field("wav", description="result encoding")


@dataclass(frozen=True)
class GenerateParams:
    """A checked generation request with every default filled in (``duration`` in seconds)."""

    model: str
    prompt: str
    negative_prompt: str | None
    duration: float
    steps: int | None
    guidance: float
    vocoder_steps: int | None
    seed: int
    format: AudioFormat


@dataclass(frozen=True)
class ReconstructParams:
    """A checked reconstruction request: the decoded upload ``wav [C, T]`` at ``sample_rate`` Hz (emptied once
    the job has run, see :meth:`released`) and its options."""

    model: str
    wav: Tensor
    sample_rate: int
    steps: int | None
    seed: int
    format: AudioFormat
    input_seconds: float = 0.0

    def released(self) -> ReconstructParams:
        """The same request without its audio, so a finished job keeps no upload in memory."""
        return dataclasses.replace(self, wav=self.wav.new_empty(0))


def cli_rule(name: str, rule: Callable[[str], object], value: object) -> None:
    """Apply the CLI argument type ``rule`` to ``value``; ConfigError ``"name: reason"`` when it refuses."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}: must be a number, got {value}")
    try:
        rule(repr(value) if isinstance(value, float) else str(value))
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def check_text(name: str, text: str | None, limits: Limits) -> None:
    """A prompt: not blank (the CLI's rule) and at most ``limits.max_prompt_chars`` characters."""
    if text is None:
        return
    if not text.strip():
        raise ConfigError(f"{name}: is empty")
    if len(text) > limits.max_prompt_chars:
        raise ConfigError(f"{name}: {len(text)} characters, the limit is {limits.max_prompt_chars}")


def check_steps(name: str, steps: int | None, limits: Limits) -> None:
    """Steps: the CLI's ``[1, 10000]`` and then the server's ``max_steps``."""
    if steps is None:
        return
    cli_rule(name, _STEPS, steps)
    if steps > limits.max_steps:
        raise ConfigError(f"{name}: {steps} steps, the limit is {limits.max_steps}")


def check_duration(name: str, seconds: float, limits: Limits) -> None:
    """A duration in seconds: the CLI's ``(0, 600]`` and then the server's ``max_duration``."""
    cli_rule(name, _DURATION, seconds)
    if seconds > limits.max_duration:
        raise ConfigError(f"{name}: {seconds:g} s, the limit is {limits.max_duration:g} s")


def check_generate(req: GenerateRequest, limits: Limits) -> None:
    """Every option of ``req`` that does not depend on the model.

    Raises:
        ConfigError: one line naming the field.
    """
    if req.duration is not None:
        check_duration("duration", req.duration, limits)
    check_sampling(req, limits)


def check_sampling(req: Any, limits: Limits) -> None:
    """The sampling options every generating or editing request has: ``prompt``, ``negative_prompt``,
    ``steps``, ``vocoder_steps``, ``guidance`` and ``seed`` attributes of ``req`` (None: not given)."""
    check_text("prompt", req.prompt, limits)
    check_text("negative_prompt", req.negative_prompt, limits)
    check_steps("steps", req.steps, limits)
    check_steps("vocoder_steps", req.vocoder_steps, limits)
    if req.guidance is not None:
        cli_rule("guidance", _CFG, req.guidance)
    if req.seed is not None:
        cli_rule("seed", seed, req.seed)


def check_reconstruct(steps: int | None, seed_value: int | None, limits: Limits) -> None:
    """The options of a reconstruction request (``steps``: vocoder steps)."""
    check_steps("steps", steps, limits)
    if seed_value is not None:
        cli_rule("seed", seed, seed_value)


def check_upload_size(num_bytes: int, limits: Limits) -> None:
    """An upload of ``num_bytes`` bytes: not empty and at most ``limits.max_upload_bytes``."""
    if num_bytes == 0:
        raise ConfigError("file: the upload is empty")
    if num_bytes > limits.max_upload_bytes:
        raise ConfigError(f"file: the upload is larger than the limit of {limits.max_upload_bytes} bytes")


def draw_seed() -> int:
    """A fresh seed in the CLI's seed range, reported in the job so that a result can be reproduced."""
    return secrets.randbelow(2**32)
