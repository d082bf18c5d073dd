"""Settings of a ``sara serve`` process: request limits and serving behaviour (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sara.errors import ConfigError

__all__ = ["Limits", "ServeConfig"]


@dataclass(frozen=True)
class Limits:
    """Per-request limits, checked before a job is queued (422 with the reason when exceeded).

    Args:
        max_duration: longest generated or uploaded audio, in seconds (the model's own maximum also applies).
        max_steps: most sampling steps (DiT / UNet and vocoder steps alike).
        max_prompt_chars: longest prompt or negative prompt, in characters.
        max_upload_bytes: largest uploaded audio file, in bytes.
    """

    max_duration: float = 30.0
    max_steps: int = 200
    max_prompt_chars: int = 500
    max_upload_bytes: int = 20 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.max_duration > 0 or self.max_steps < 1 or self.max_prompt_chars < 1 \
                or self.max_upload_bytes < 1:
            raise ConfigError("serve limits must all be positive")


@dataclass(frozen=True)
class ServeConfig:
    """How the server runs.

    Args:
        models: model names (bundled: ``sara-demo``...) or directories; the first is the default model.
        output_dir: the only folder the server writes to (results, uploads); None: a fresh temporary folder.
        device: torch device the models run on.
        dtype: compute dtype of the models' networks (float32, bfloat16, float16 on GPU).
        compile: torch.compile the networks (the first request of each shape pays the compilation).
        queue_size: most jobs waiting across all models; beyond it ``POST`` answers 429.
        max_batch: most compatible requests run in one forward pass.
        batch_window: seconds a worker waits after the first queued request for others to batch with it.
        batching: False runs one request at a time (the benchmark's baseline).
        result_ttl: seconds a finished job and its files are kept.
        max_jobs: most finished jobs kept at once (the oldest are deleted first).
        token: bearer token required on every API call (None: no authentication).
        limits: per-request limits.
    """

    models: tuple[str, ...] = ("sara-demo",)
    output_dir: Path | None = None
    device: str = "cpu"
    dtype: str = "float32"
    compile: bool = False
    queue_size: int = 64
    max_batch: int = 8
    batch_window: float = 0.05
    batching: bool = True
    result_ttl: float = 600.0
    max_jobs: int = 1000
    token: str | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigError("give at least one model")
        if self.queue_size < 1 or self.max_batch < 1 or self.max_jobs < 1:
            raise ConfigError("--queue-size, --max-batch and --max-jobs must be >= 1")
        if self.batch_window < 0 or not self.result_ttl > 0:
            raise ConfigError("--batch-window must be >= 0 and --result-ttl > 0 seconds")
        if self.token is not None and not self.token.strip():
            raise ConfigError("--token is empty")
