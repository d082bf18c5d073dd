"""How many intra-op threads inference uses, so that a busy machine does not make sara collapse.

torch starts one intra-op thread per core.  Its OpenMP threads meet at a barrier after every parallel
region, so when another process keeps one of the cores busy every region waits for the thread that lost its
core: measured on a 2-core machine, a 1.5 s demo generation took 38 s with two threads beside a busy
neighbour, and stayed fast with one (``benchmarks/bench_threads.py`` reproduces this).

Policy (:func:`choose_threads`), used by every generating command unless ``--threads N`` is given:

1. ``--threads N`` (or ``SARA_THREADS``) wins; ``OMP_NUM_THREADS`` set by the user is respected.
2. Otherwise the *idle* cores are counted: the usable cores (affinity mask) minus the cores other
   processes kept busy over a short sample of ``/proc/stat`` (100 ms), rounded down, at least one.
3. Small networks (under :data:`SMALL_MODEL_PARAMS` parameters) use one thread: their matrices are too
   small for a second thread to pay for its synchronisation (measured on the bundled demos).

The sample is a snapshot: a neighbour that starts later is not seen.  ``OMP_WAIT_POLICY=PASSIVE`` (set by
the ``sara`` command before torch loads, unless the user set it) makes waiting threads sleep instead of
spin, which limits the damage in that case.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sara.errors import ConfigError

__all__ = ["MAX_THREADS", "SMALL_MODEL_PARAMS", "busy_cores", "choose_threads", "configure_threads",
           "set_passive_wait", "usable_cores"]

SMALL_MODEL_PARAMS = 20_000_000  # below this, one thread is as fast as two (bundled demos: 4-6 M per network)
MAX_THREADS = 1024
_STAT = Path("/proc/stat")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; ``os.cpu_count()`` where that is unavailable)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies summed over all cores, or None where ``/proc/stat`` is not readable."""
    try:
        fields = _STAT.read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields[:8]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_cores(interval: float = 0.1) -> float:
    """How many cores other processes kept busy during ``interval`` seconds (0.0 when unknown)."""
    first = _cpu_times()
    if first is None:
        return 0.0
    time.sleep(interval)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return 0.0
    share = (second[0] - first[0]) / (second[1] - first[1])
    return share * (os.cpu_count() or 1)


def choose_threads(requested: int | None = None, *, num_params: int | None = None) -> int:
    """The intra-op thread count by the policy in the module docstring.

    Args:
        requested: an explicit count (``--threads``); None applies the policy.
        num_params: parameters of the largest network that will run (None: assume large).

    Raises:
        ConfigError: ``requested`` or ``SARA_THREADS`` is not an integer in [1, 1024].
    """
    if requested is None and os.environ.get("SARA_THREADS"):
        requested = _parse_threads(os.environ["SARA_THREADS"], "SARA_THREADS")
    if requested is not None:
        return _parse_threads(requested, "--threads")
    if os.environ.get("OMP_NUM_THREADS"):
        import torch

        return torch.get_num_threads()
    if num_params is not None and num_params < SMALL_MODEL_PARAMS:
        return 1
    idle = usable_cores() - busy_cores()
    return max(1, min(usable_cores(), int(idle + 0.25)))  # a core 75 % idle counts as free


def _parse_threads(value: object, name: str) -> int:
    try:
        count = int(str(value))
    except ValueError:
        raise ConfigError(f"{name} must be an integer in [1, {MAX_THREADS}], got {value!r}") from None
    if not 1 <= count <= MAX_THREADS:
        raise ConfigError(f"{name} must be an integer in [1, {MAX_THREADS}], got {count}")
    return count


def configure_threads(requested: int | None = None, *, num_params: int | None = None) -> int:
    """Apply :func:`choose_threads` with ``torch.set_num_threads`` and return the count."""
    import torch

    count = choose_threads(requested, num_params=num_params)
    if count != torch.get_num_threads():
        torch.set_num_threads(count)
    return count


def set_passive_wait() -> None:
    """Ask OpenMP to let waiting threads sleep (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose.

    Only effective before torch (and its OpenMP runtime) is first imported in this process.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
