"""Audio-to-audio jobs of ``sara serve``: ``edit`` (a variation), ``inpaint`` and ``extend`` of an uploaded clip.

They run the pipeline's :class:`~sara.edit.protocol.AudioEditor` methods (SARA models with a semantic encoder),
with the rules of ``sara edit`` / ``sara inpaint`` / ``sara extend``: the checks of :mod:`sara.edit.checks`,
the CLI's step / guidance / seed ranges (:mod:`sara.serve.limits`), then the server's limits (an extension may
not make the clip longer than ``max_duration``).  Edits are never batched: each is one forward pass.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

from torch import Tensor

from sara.edit.checks import check_fraction, check_positive_seconds, check_region
from sara.errors import ConfigError
from sara.serve.config import Limits
from sara.serve.limits import AudioFormat, check_sampling, draw_seed

__all__ = ["EditOptions", "EditParams", "EditQuery", "Operation", "check_edit_audio", "check_edit_options",
           "run_edit"]

Operation = Literal["edit", "inpaint", "extend"]
SAMPLING_SHARE = 0.9  # progress reported by the DiT steps; the vocoder decode is the rest


@dataclass
class EditQuery:
    """The query options every audio-to-audio endpoint takes (omitted: the model's defaults)."""

    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    vocoder_steps: int | None = None
    seed: int | None = None
    model: str | None = None
    format: AudioFormat = "wav"


@dataclass(frozen=True)
class EditOptions:
    """An audio-to-audio request without its audio (seconds for ``start`` / ``end`` / ``seconds``).

    ``edit``: ``prompt`` and ``strength`` (0: the reconstruction, 1: fresh generation);
    ``inpaint``: ``prompt`` and the region ``[start, end)``; ``extend``: ``seconds`` after the clip
    (``before``: ahead of it), ``prompt`` optional (None: unconditional).
    """

    operation: Operation
    query: EditQuery
    prompt: str | None = None
    strength: float = 0.5
    start: float = 0.0
    end: float = 0.0
    seconds: float = 0.0
    before: bool = False

    @property
    def model(self) -> str | None:
        return self.query.model


@dataclass(frozen=True)
class EditParams:
    """A checked audio-to-audio job: the options (model, seed and steps resolved) and the decoded upload
    ``wav [C, T]`` at ``sample_rate`` Hz (emptied once the job has run, see :meth:`released`)."""

    options: EditOptions
    wav: Tensor
    sample_rate: int
    input_seconds: float

    @property
    def model(self) -> str:
        return str(self.options.query.model)

    @property
    def format(self) -> AudioFormat:
        return self.options.query.format

    def released(self) -> EditParams:
        """The same job without its audio, so a finished job keeps no upload in memory."""
        return dataclasses.replace(self, wav=self.wav.new_empty(0))

    def public(self) -> dict[str, Any]:
        """The job's settings as ``GET /v1/jobs/{id}`` shows them."""
        o = self.options
        out: dict[str, Any] = {"prompt": o.prompt, **vars(o.query), "input_duration_s": self.input_seconds}
        out.update({"edit": {"strength": o.strength}, "inpaint": {"start": o.start, "end": o.end},
                    "extend": {"seconds": o.seconds, "before": o.before}}[o.operation])
        return out


def check_edit_options(o: EditOptions, limits: Limits) -> None:
    """Everything of ``o`` that does not need the audio (ConfigError, one line naming the field)."""
    if o.operation != "extend" and o.prompt is None:
        raise ConfigError(f"prompt: {o.operation} needs a prompt")
    check_sampling(SimpleNamespace(prompt=o.prompt, **vars(o.query)), limits)
    if o.operation == "edit":
        check_fraction(o.strength, "strength")
    if o.operation == "extend":
        check_positive_seconds(o.seconds, "seconds", limits.max_duration)


def check_edit_audio(o: EditOptions, input_seconds: float, limits: Limits) -> None:
    """The rules that need the clip's length: the inpainted region lies inside it, an extension keeps the
    result within ``limits.max_duration``."""
    if o.operation == "inpaint":
        check_region(o.start, o.end, input_seconds)
    if o.operation == "extend" and input_seconds + o.seconds > limits.max_duration + 1e-6:
        raise ConfigError(f"seconds: the extended clip would be {input_seconds + o.seconds:.3g} s, the limit is "
                          f"{limits.max_duration:g} s")


def resolve_options(o: EditOptions, model: str, defaults: dict[str, Any], limits: Limits) -> EditOptions:
    """``o`` with the model name, a drawn seed and the model's default steps (capped to the limits)."""
    q = o.query
    steps = q.steps if q.steps is not None else min(int(defaults["steps"] or 100), limits.max_steps)
    query = dataclasses.replace(q, model=model, steps=steps, seed=draw_seed() if q.seed is None else q.seed)
    return dataclasses.replace(o, query=query)


def run_edit(editor: Any, p: EditParams, progress: Callable[[float], None]) -> Tensor:
    """Run the job on ``editor`` (a pipeline with the :class:`~sara.edit.protocol.AudioEditor` methods):
    mono ``[S]`` at ``editor.sample_rate``; ``progress`` sees the fraction of DiT steps done."""
    o, q = p.options, p.options.query
    kwargs = {"steps": q.steps, "guidance_scale": q.guidance, "seed": q.seed, "negative_prompt": q.negative_prompt,
              "vocoder_steps": q.vocoder_steps, "callback": _step_counter(editor, p, progress)}
    wav = p.wav.unsqueeze(0)
    if o.operation == "edit":
        out = editor.variation(wav, p.sample_rate, o.prompt, o.strength, **kwargs)
    elif o.operation == "inpaint":
        out = editor.inpaint(wav, p.sample_rate, o.prompt, o.start, o.end, **kwargs)
    else:
        out = editor.extend(wav, p.sample_rate, o.seconds, o.prompt, before=o.before, **kwargs)
    return out[0].float().cpu()


def _step_counter(editor: Any, p: EditParams, progress: Callable[[float], None]) -> Callable[[int, Tensor], None]:
    """A per-step callback reporting ``calls / expected`` (an estimate: windows x steps) of the sampling."""
    expected = max(1, expected_steps(p, float(getattr(editor, "default_duration", 10.0))))
    calls = [0]

    def step(_i: int, _x: Tensor) -> None:
        calls[0] += 1
        progress(SAMPLING_SHARE * min(1.0, calls[0] / expected))

    return step


def expected_steps(p: EditParams, window_seconds: float) -> int:
    """About how many DiT steps the job takes: steps (times ``strength`` for an edit) per window."""
    o, steps = p.options, int(p.options.query.steps or 1)
    span = {"edit": p.input_seconds, "inpaint": o.end - o.start, "extend": o.seconds}[o.operation]
    windows = max(1, math.ceil(span / max(window_seconds, 1e-3)))
    per_window = math.ceil(steps * o.strength) if o.operation == "edit" else steps
    return windows * per_window
