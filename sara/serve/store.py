"""Jobs and their results: the job records, the server's output folder and the expiry of old results.

Every file the server writes is ``<output_dir>/<job id>.<suffix>``, the id being 32 random hex digits made
here, so nothing a request sends can name a path.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from sara.serve.edits import EditParams
from sara.serve.limits import GenerateParams, ReconstructParams

__all__ = ["FINISHED", "Job", "JobState", "JobStore", "new_job_id"]

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED = ("done", "failed", "cancelled")


def new_job_id() -> str:
    """32 random hex digits: unguessable, and safe as a file name."""
    return secrets.token_hex(16)


@dataclass
class Job:
    """One request's life: ``queued`` -> ``running`` (``progress`` in [0, 1]) -> ``done`` / ``failed`` /
    ``cancelled``.  Times are ``time.time()`` seconds."""

    params: GenerateParams | ReconstructParams | EditParams
    id: str = field(default_factory=lambda: new_job_id())
    state: JobState = "queued"
    progress: float = 0.0
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    audio: Path | None = None
    sample_rate: int | None = None
    num_samples: int | None = None
    batch_size: int | None = None

    @property
    def kind(self) -> str:
        """``generate``, ``reconstruct``, ``edit``, ``inpaint`` or ``extend``."""
        if isinstance(self.params, EditParams):
            return self.params.options.operation
        return "generate" if isinstance(self.params, GenerateParams) else "reconstruct"

    @property
    def model(self) -> str:
        return self.params.model

    def public(self) -> dict[str, Any]:
        """The JSON answer of ``GET /v1/jobs/{id}``."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "model": self.model, "state": self.state,
                               "progress": round(self.progress, 4), "error": self.error,
                               "created": self.created, "started": self.started, "finished": self.finished,
                               "params": self._public_params(), "result": None}
        if self.state == "done" and self.audio is not None:
            out["result"] = {"audio_url": f"/v1/jobs/{self.id}/audio",
                             "spectrogram_url": f"/v1/jobs/{self.id}/spectrogram.png",
                             "format": self.params.format, "sample_rate": self.sample_rate,
                             "duration_s": self.num_samples / self.sample_rate, "batch_size": self.batch_size}
        return out

    def _public_params(self) -> dict[str, Any]:
        p = self.params
        if isinstance(p, GenerateParams):
            return {k: getattr(p, k) for k in ("prompt", "negative_prompt", "duration", "steps", "guidance",
                                               "vocoder_steps", "seed", "format")}
        if isinstance(p, EditParams):
            return p.public()
        return {"steps": p.steps, "seed": p.seed, "format": p.format,
                "input_duration_s": p.input_seconds}


class JobStore:
    """Thread-safe job records and their files under ``output_dir``, deleted ``ttl`` seconds after they finish.

    Args:
        output_dir: the folder for results (created if missing).
        ttl: seconds a finished job is kept.
        max_jobs: most finished jobs kept; beyond it the oldest are deleted early.
    """

    def __init__(self, output_dir: Path, ttl: float, max_jobs: int) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.ttl, self.max_jobs = ttl, max_jobs
        self.lock = threading.RLock()
        self._jobs: dict[str, Job] = {}

    def add(self, job: Job) -> Job:
        with self.lock:
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        """The job, or None for an unknown or expired id."""
        with self.lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """Every job kept, oldest first."""
        with self.lock:
            return list(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)

    def path(self, job_id: str, suffix: str) -> Path:
        """``<output_dir>/<id>.<suffix>``: the only kind of path the server writes (``job_id`` made here)."""
        if len(job_id) != 32 or not all(c in "0123456789abcdef" for c in job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.output_dir / f"{job_id}.{suffix}"

    def finish(self, job: Job, wav: Tensor, sample_rate: int, batch_size: int) -> None:
        """Write ``wav [N]`` as the job's result and mark it done (a job cancelled meanwhile keeps no file)."""
        from sara.audio.io import save_audio

        path = save_audio(self.path(job.id, job.params.format), wav, sample_rate)
        with self.lock:
            if job.state != "running":
                path.unlink(missing_ok=True)
                return
            job.audio, job.sample_rate, job.num_samples = path, sample_rate, int(wav.shape[-1])
            job.batch_size, job.progress = batch_size, 1.0
            self.mark(job, "done")

    def mark(self, job: Job, state: JobState, error: str | None = None) -> None:
        """Set a job's state (and finish time for a final state, when an upload's audio is released)."""
        with self.lock:
            job.state, job.error = state, error
            if state == "running":
                job.started = time.time()
            elif state in FINISHED:
                job.finished = time.time()
                if isinstance(job.params, (ReconstructParams, EditParams)):
                    job.params = job.params.released()

    def delete(self, job: Job) -> None:
        """Forget ``job`` and delete its files."""
        with self.lock:
            self._jobs.pop(job.id, None)
        for suffix in ("wav", "flac", "png", "upload"):
            self.path(job.id, suffix).unlink(missing_ok=True)

    def expire(self, now: float | None = None) -> int:
        """Delete finished jobs older than ``ttl`` and the oldest beyond ``max_jobs``; how many were deleted."""
        now = time.time() if now is None else now
        with self.lock:
            done = sorted((j for j in self._jobs.values() if j.state in FINISHED), key=lambda j: j.finished or 0)
        excess = max(0, len(done) - self.max_jobs)
        old = [j for i, j in enumerate(done) if i < excess or (j.finished or 0) + self.ttl <= now]
        for job in old:
            self.delete(job)
        return len(old)
