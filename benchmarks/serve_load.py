"""``sara serve`` under load: 100 concurrent clients on loopback, with batching and one request at a time.

For each mode the script starts ``sara serve --port 0`` (``--no-batching`` for the baseline), warms it up,
then lets ``--clients`` clients each submit one generation at once, follow it over server-sent events and
download the WAV.  It reports requests accepted / refused (429), p50 / p95 latency (submit -> audio
downloaded), throughput (completed requests per second from the first submission to the last download),
``/health`` and the server's resident memory (RSS) before and after, then the batching / baseline ratios.
Everything is bounded: ``--clients`` requests per mode, and ``--deadline`` seconds per mode.

    nice -n 19 python benchmarks/serve_load.py [--clients 100] [--model sara-demo] [--duration 1] [--steps 8]
        [--max-batch 8] [--queue-size 64] [--deadline 600] [--modes batching,sequential] [--url URL]

``--url`` measures one already running server instead (one mode; RSS only with ``--pid``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Outcome:
    """What the clients saw in one mode (latencies in seconds)."""

    accepted: int = 0
    refused: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first_submit: float = 0.0
    last_done: float = 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=100, help="concurrent clients, one request each (default 100)")
    p.add_argument("--model", default="sara-demo", help="model name or directory for the servers started here")
    p.add_argument("--duration", type=float, default=1.0, help="seconds of audio per request (default 1)")
    p.add_argument("--steps", type=int, default=8, help="sampling steps per request (default 8)")
    p.add_argument("--max-batch", type=int, default=8, help="server --max-batch (default 8)")
    p.add_argument("--queue-size", type=int, default=64, help="server --queue-size (default 64)")
    p.add_argument("--deadline", type=float, default=600.0, help="seconds allowed per mode (default 600)")
    p.add_argument("--modes", default="batching,sequential", help="comma-separated: batching, sequential")
    p.add_argument("--url", default=None, help="measure this running server instead of starting one")
    p.add_argument("--pid", type=int, default=None, help="with --url: the server's process id, for its RSS")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------- server


def start_server(args: argparse.Namespace, batching: bool) -> tuple[subprocess.Popen, str]:
    """``sara serve`` on a free loopback port; ``(process, base URL)`` once it listens."""
    cmd = [sys.executable, "-m", "sara.cli.__main__", "serve", "--port", "0", "--model", args.model,
           "--max-batch", str(args.max_batch), "--queue-size", str(args.queue_size)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd + ([] if batching else ["--no-batching"]), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/", line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise SystemExit(f"sara serve did not start (exit {proc.poll()})")


def stop_server(proc: subprocess.Popen) -> int:
    """Interrupt the server and return its exit status."""
    proc.send_signal(signal.SIGTERM)  # SIGINT may be ignored in a background job
    try:
        return proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of ``pid`` in MiB (Linux ``/proc``), None when unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration, TypeError):
        return None
    return kib / 1024


# ------------------------------------------------------------------------------------------- clients


async def one_client(http: httpx.AsyncClient, body: dict[str, Any], out: Outcome) -> None:
    """One request's life; a transport error is recorded with the phase it happened in."""
    phase = ["submit"]
    try:
        await _one_request(http, body, out, phase)
    except httpx.TransportError as exc:
        out.failed += 1
        out.errors.append(f"{phase[0]}: {type(exc).__name__}")


async def _one_request(http: httpx.AsyncClient, body: dict[str, Any], out: Outcome, phase: list[str]) -> None:
    """Submit, follow the events to the end, download the audio; record the outcome."""
    start = time.monotonic()
    out.first_submit = out.first_submit or start
    r = await http.post("/v1/generate", json=body)
    if r.status_code == 429:
        out.refused += 1
        return
    r.raise_for_status()
    out.accepted += 1
    phase[0] = "events"
    job = await follow(http, r.json()["id"])
    if job.get("state") != "done":
        out.failed += 1
        return
    phase[0] = "download"
    audio = await http.get(job["result"]["audio_url"])
    if audio.status_code != 200 or audio.content[:4] != b"RIFF":
        out.failed += 1
        return
    out.last_done = max(out.last_done, time.monotonic())
    out.latencies.append(time.monotonic() - start)
    out.batch_sizes.append(job["result"]["batch_size"])


async def follow(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    """The job's final state, read from its server-sent events."""
    job: dict[str, Any] = {}
    async with http.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                job = json.loads(line[6:])
    return job


async def load(url: str, args: argparse.Namespace, clients: int) -> Outcome:
    """``clients`` concurrent requests, bounded by ``--deadline``."""
    out = Outcome()
    body = {"prompt": "a dog barks in the rain", "duration": args.duration, "steps": args.steps, "seed": 0}
    limits = httpx.Limits(max_connections=clients * 2 + 10, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=args.deadline) as http:
        tasks = [asyncio.create_task(one_client(http, {**body, "seed": i}, out)) for i in range(clients)]
        done, pending = await asyncio.wait(tasks, timeout=args.deadline)
        for t in pending:
            t.cancel()
        errors = out.errors + [type(t.exception()).__name__ for t in done if t.exception() is not None]
        out.failed += len(pending) + len(errors) - len(out.errors)
        if errors or pending:
            print(f"  client errors: {sorted(errors)}; {len(pending)} past the deadline", flush=True)
    return out


def health(url: str) -> dict[str, Any]:
    return httpx.get(url + "/health", timeout=30).json()


# ------------------------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def summary(out: Outcome) -> dict[str, float]:
    span = out.last_done - out.first_submit
    return {"accepted": out.accepted, "refused": out.refused, "failed": out.failed, "completed": len(out.latencies),
            "p50_s": percentile(out.latencies, 0.5), "p95_s": percentile(out.latencies, 0.95),
            "throughput_rps": len(out.latencies) / span if span > 0 else float("nan"),
            "mean_batch": sum(out.batch_sizes) / len(out.batch_sizes) if out.batch_sizes else float("nan")}


def measure(url: str, pid: int | None, args: argparse.Namespace, name: str) -> dict[str, Any]:
    """Warm up, then the load; health and RSS before and after."""
    asyncio.run(load(url, args, min(4, args.clients)))  # model caches, allocator, first-request costs
    before, rss_before = health(url), rss_mib(pid)
    result = summary(asyncio.run(load(url, args, args.clients)))
    after, rss_after = health(url), rss_mib(pid)
    result.update(health_before=before["status"], health_after=after["status"], queued_after=after["queued"],
                  rss_before_mib=rss_before, rss_after_mib=rss_after)
    print(f"{name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in result.items()), flush=True)
    return result


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run_mode(args: argparse.Namespace, name: str) -> dict[str, Any]:
    proc, url = start_server(args, batching=name == "batching")
    try:
        return measure(url, proc.pid, args, name)
    finally:
        print(f"{name}: server exit status {stop_server(proc)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"{args.clients} clients, model {args.model}, {args.duration:g} s, {args.steps} steps, max batch "
          f"{args.max_batch}, queue {args.queue_size}", flush=True)
    if args.url is not None:
        measure(args.url, args.pid, args, "server")
        return 0
    results = {name: run_mode(args, name) for name in args.modes.split(",")}
    if {"batching", "sequential"} <= set(results):
        b, s = results["batching"], results["sequential"]
        print(f"ratios batching / sequential: throughput x{b['throughput_rps'] / s['throughput_rps']:.2f}, "
              f"p50 latency x{b['p50_s'] / s['p50_s']:.2f}, p95 latency x{b['p95_s'] / s['p95_s']:.2f}")
        for name, r in results.items():
            if r["rss_before_mib"] and r["rss_after_mib"]:
                print(f"{name}: RSS growth under load x{r['rss_after_mib'] / r['rss_before_mib']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
