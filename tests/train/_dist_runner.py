"""``sara <argv>`` with a deliberately broken data-parallel set-up, for showing that the equivalence tests fail.

``SARA_TEST_BREAK`` (read here only, never by sara itself):

* ``nosync``: DDP runs with a communication hook that returns each process's own gradient, so the
  gradients are never averaged across processes (each rank then steps on its own half of the batch).
* ``samedata``: every process reads the batches of process 0, so the global batch holds each item twice
  and the other half of the data is never seen.
* unset: plain ``sara``.
"""

# no `from __future__ import annotations`: DDP checks the hook's `bucket` annotation at run time
import os
import sys

import torch


def _local_gradients_only(state: object, bucket: torch.distributed.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook that skips the all-reduce."""
    fut: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    fut.set_result(bucket.buffer())
    return fut


def _break_sync() -> None:
    """Make ``Accelerator.prepare_model`` register :func:`_local_gradients_only` on the DDP wrapper."""
    from accelerate import Accelerator

    prepare_model = Accelerator.prepare_model

    def patched(self, model, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        wrapped = prepare_model(self, model, *args, **kwargs)
        if isinstance(wrapped, torch.nn.parallel.DistributedDataParallel):
            wrapped.register_comm_hook(None, _local_gradients_only)
        return wrapped

    Accelerator.prepare_model = patched


def _break_data_split() -> None:
    """Give every process the batches of process 0."""
    from accelerate import data_loader

    init = data_loader.BatchSamplerShard.__init__

    def patched(self, batch_sampler, num_processes=1, process_index=0, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        init(self, batch_sampler, num_processes, 0, *args, **kwargs)

    data_loader.BatchSamplerShard.__init__ = patched


def main() -> int:
    """Apply the requested breakage, then run the sara CLI on ``sys.argv[1:]``."""
    mode = os.environ.get("SARA_TEST_BREAK")
    if mode == "nosync":
        _break_sync()
    elif mode == "samedata":
        _break_data_split()
    elif mode:
        raise SystemExit(f"unknown SARA_TEST_BREAK {mode!r}")
    from sara.cli.__main__ import main as sara_main

    return sara_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
