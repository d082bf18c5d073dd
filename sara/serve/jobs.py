"""The bounded queue and one worker thread per model, which batches compatible requests.

A worker takes the oldest queued job of its model, waits ``batch_window`` seconds from that job's arrival
for others, then runs every queued job with the same batching key (up to ``max_batch``) in one forward
pass (:meth:`sara.serve.backends.Backend.generate`).  Requests that arrive while a pass runs are batched
into the next one.  The queue holds at most ``queue_size`` jobs across all models; a submission beyond
that raises :class:`QueueFull`, which carries an estimate of when to retry.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Hashable

from sara.errors import SaraError
from sara.serve.config import ServeConfig
from sara.serve.edits import EditParams
from sara.serve.limits import GenerateParams
from sara.serve.registry import ModelRegistry
from sara.serve.store import Job, JobStore

__all__ = ["QueueFull", "Scheduler"]

log = logging.getLogger("sara.serve")


class QueueFull(Exception):
    """The queue is full; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the queue is full; retry after {retry_after} s")
        self.retry_after = retry_after


class _Cancelled(Exception):
    """Every job of the running batch was cancelled: stop the forward pass."""


class Scheduler:
    """Queues jobs and runs them on per-model workers.

    Args:
        registry: the models.
        store: the job records and output folder.
        config: queue size, batch size and window, batching on or off.
    """

    def __init__(self, registry: ModelRegistry, store: JobStore, config: ServeConfig) -> None:
        self.registry, self.store, self.config = registry, store, config
        self.cond = threading.Condition(store.lock)  # one lock for the queues and the job states
        self.queues: dict[str, deque[Job]] = {name: deque() for name in registry.names}
        self.batch_seconds = 1.0  # running mean of one forward pass, for Retry-After
        self.forward_passes = 0
        self._stopped = False
        self._workers = [threading.Thread(target=self._work, args=(n,), name=f"sara-serve-{n}", daemon=True)
                         for n in registry.names]
        for w in self._workers:
            w.start()

    @property
    def pending(self) -> int:
        """Jobs waiting in all queues."""
        return sum(len(q) for q in self.queues.values())

    def submit(self, job: Job) -> Job:
        """Queue ``job``; :class:`QueueFull` when ``queue_size`` jobs are already waiting."""
        with self.cond:
            if self.pending >= self.config.queue_size:
                raise QueueFull(self.retry_after())
            self.store.add(job)
            self.queues[job.model].append(job)
            self.cond.notify_all()
        return job

    def retry_after(self) -> int:
        """Seconds until the queue has room, estimated from the mean forward-pass time (at least 1)."""
        batch = self.config.max_batch if self.config.batching else 1
        return max(1, math.ceil(self.batch_seconds * self.pending / batch / len(self.queues)))

    def cancel(self, job: Job) -> None:
        """Cancel a queued or running job (a running batch stops once all its jobs are cancelled)."""
        with self.cond:
            if job.state == "queued":
                self.queues[job.model].remove(job)
            if job.state in ("queued", "running"):
                self.store.mark(job, "cancelled")

    def close(self, timeout: float = 10.0) -> None:
        """Cancel everything and stop the workers."""
        with self.cond:
            self._stopped = True
            for q in self.queues.values():
                for job in list(q):
                    self.cancel(job)
            for job in self.store.jobs():
                self.cancel(job)  # running batches stop at their next step
            self.cond.notify_all()
        for w in self._workers:
            w.join(timeout)

    # ------------------------------------------------------------------------------------ workers

    def _work(self, model: str) -> None:
        """A worker's loop: take a batch, run it, until :meth:`close`."""
        while True:
            batch = self._next_batch(model)
            if batch is None:
                return
            if batch:
                self._run(batch)

    def _next_batch(self, model: str) -> list[Job] | None:
        """The next batch of ``model`` (marked running), [] when it was cancelled meanwhile, None to stop."""
        queue = self.queues[model]
        with self.cond:
            while not queue and not self._stopped:
                self.cond.wait()
            if self._stopped:
                return None
            first = queue[0]
        wait = first.created + self.config.batch_window - time.time()
        if self.config.batching and wait > 0:
            time.sleep(wait)  # let concurrent requests arrive
        with self.cond:
            return self._take(queue)

    def _take(self, queue: deque[Job]) -> list[Job]:
        """Remove the oldest job and the queued jobs compatible with it (lock held)."""
        if not queue:
            return []
        limit = self.config.max_batch if self.config.batching else 1
        key = self._key(queue[0])
        batch = [j for j in queue if self._key(j) == key][:limit]
        for job in batch:
            queue.remove(job)
            self.store.mark(job, "running")
        return batch

    def _key(self, job: Job) -> Hashable:
        if not isinstance(job.params, GenerateParams):
            return ("audio", job.id)  # reconstructions and edits are never batched
        return ("generate", self.registry.get(job.model).batch_key(job.params))

    def _run(self, batch: list[Job]) -> None:
        """Run one batch and record each job's result or one-line error."""
        start = time.time()
        try:
            self._forward(batch)
        except _Cancelled:
            pass
        except SaraError as exc:
            self._fail(batch, str(exc))
        except MemoryError:
            self._fail(batch, "out of memory (try a shorter duration)")
        except Exception as exc:  # a bug: log it whole, answer one line
            log.exception("batch of %d %s job(s) failed", len(batch), batch[0].model)
            self._fail(batch, _internal_error(exc))
        self.forward_passes += 1
        self.batch_seconds = 0.8 * self.batch_seconds + 0.2 * (time.time() - start)

    def _forward(self, batch: list[Job]) -> None:
        backend = self.registry.get(batch[0].model)
        if isinstance(batch[0].params, GenerateParams):
            wavs = backend.generate([j.params for j in batch], self._progress(batch))
        elif isinstance(batch[0].params, EditParams):
            wavs = [backend.edit(batch[0].params, self._progress(batch))]
        else:
            wavs = [self._reconstruct(batch[0])]
        for job, wav in zip(batch, wavs):
            self.store.finish(job, wav, backend.sample_rate, len(batch))

    def _reconstruct(self, job: Job):  # noqa: ANN202 - Tensor [N]
        p = job.params  # read once: finishing the job releases its audio
        rec = self.registry.get(job.model).reconstructor()
        out = rec.reconstruct(p.wav.unsqueeze(0), p.sample_rate, steps=p.steps, seed=p.seed)
        return out[0].float().cpu()

    def _progress(self, batch: list[Job]):  # noqa: ANN202 - Progress
        def update(fraction: float) -> None:
            if all(j.state == "cancelled" for j in batch):
                raise _Cancelled
            for job in batch:
                job.progress = max(job.progress, min(1.0, fraction))

        return update

    def _fail(self, batch: list[Job], message: str) -> None:
        with self.cond:
            for job in batch:
                if job.state == "running":
                    self.store.mark(job, "failed", " ".join(message.split()) or "failed")


def _internal_error(exc: Exception) -> str:
    """The one line a client sees for an unexpected error (the traceback goes to the server log)."""
    if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
        return "out of memory on the device (try a shorter duration)"
    return f"internal error ({type(exc).__name__}); see the server log"
