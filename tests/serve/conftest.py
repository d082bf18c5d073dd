"""Fixtures for the ``sara serve`` tests: a fake backend that counts its forward passes (and can be held
at a gate to fill the queue), and in-process clients of apps built around it."""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import soundfile as sf
import torch
from torch import Tensor

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'sara[serve]')")

from fastapi.testclient import TestClient  # noqa: E402

from sara.serve import ServeConfig, create_app  # noqa: E402
from sara.serve.backends import Backend  # noqa: E402
from sara.serve.limits import GenerateParams  # noqa: E402
from sara.serve.registry import ModelRegistry  # noqa: E402

FAKE_RATE = 8000  # Hz


class FakeBackend(Backend):
    """Sines at ``100 * (row + 1)`` Hz; records the batch size of every forward pass in ``calls``.

    ``gate``: while cleared, a forward pass waits at its first progress report (``entered`` is set then),
    so tests can fill the queue behind a running batch.
    """

    system = "fake"
    per_row_seeds = True

    def __init__(self) -> None:
        super().__init__(pipe=None, kind="fake")
        self.calls: list[int] = []
        self.prompts: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    @property
    def sample_rate(self) -> int:
        return FAKE_RATE

    def defaults(self) -> dict[str, Any]:
        return {"duration": 0.5, "steps": 4, "guidance": 3.0, "vocoder_steps": None}

    def unsupported(self, req: Any) -> str | None:
        return "vocoder_steps" if req.vocoder_steps is not None else None

    def generate(self, batch: list[GenerateParams], progress: Any) -> list[Tensor]:
        self.calls.append(len(batch))
        self.prompts.append([p.prompt for p in batch])
        for step in range(int(batch[0].steps)):
            progress(step / batch[0].steps)
            self.entered.set()
            while not self.gate.wait(0.01):
                progress(step / batch[0].steps)  # lets a cancellation stop the pass
        n = round(batch[0].duration * FAKE_RATE)
        t = torch.arange(n) / FAKE_RATE
        return [0.5 * torch.sin(2 * math.pi * 100 * (i + 1) * t) for i in range(len(batch))]

    def reconstructor(self) -> Any:
        return _Identity()

    def editor(self) -> Any:
        return FakeEditor()


class FakeEditor:
    """The :class:`~sara.edit.protocol.AudioEditor` methods on the identity 'model': a variation is the clip,
    inpainting zeroes the region, extension appends (or prepends) zeros; two step callbacks each; ``calls``
    records ``(method, args, kwargs)``."""

    sample_rate = FAKE_RATE
    default_duration = 0.5
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _clip(self, name: str, wav: Tensor, sample_rate: int, args: tuple[Any, ...], kw: dict[str, Any]) -> Tensor:
        from sara.audio.dsp import resample

        FakeEditor.calls.append((name, args, {k: v for k, v in kw.items() if k != "callback"}))
        for i in range(2):
            kw["callback"](i, wav)
        return resample(wav.mean(1), sample_rate, FAKE_RATE)

    def variation(self, wav: Tensor, sample_rate: int, prompt: str, strength: float, **kw: Any) -> Tensor:
        return self._clip("variation", wav, sample_rate, (prompt, strength), kw)

    def inpaint(self, wav: Tensor, sample_rate: int, prompt: str, start: float, end: float, **kw: Any) -> Tensor:
        out = self._clip("inpaint", wav, sample_rate, (prompt, start, end), kw).clone()
        out[:, round(start * FAKE_RATE):round(end * FAKE_RATE)] = 0
        return out

    def extend(self, wav: Tensor, sample_rate: int, seconds: float, prompt: str | None, **kw: Any) -> Tensor:
        out = self._clip("extend", wav, sample_rate, (seconds, prompt, kw.get("before")), kw)
        pad = torch.zeros(1, round(seconds * FAKE_RATE))
        return torch.cat([pad, out] if kw.get("before") else [out, pad], dim=-1)


class _Identity:
    sample_rate = FAKE_RATE

    def reconstruct(self, wav: Tensor, sample_rate: int, steps: int | None = None, seed: int = 0) -> Tensor:
        from sara.audio.dsp import resample

        return resample(wav.mean(1), sample_rate, FAKE_RATE)


def wav_bytes(seconds: float, sample_rate: int = 16000) -> bytes:
    """A mono 16-bit WAV file of a 440 Hz tone."""
    t = torch.arange(round(seconds * sample_rate)) / sample_rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * torch.sin(2 * math.pi * 440 * t)).numpy(), sample_rate, format="WAV")
    return buf.getvalue()


def wav_seconds(data: bytes) -> float:
    """Duration of an encoded audio file, in seconds."""
    info = sf.info(io.BytesIO(data))
    return info.frames / info.samplerate


def wait_state(client: TestClient, job_id: str, states: tuple[str, ...] = ("done", "failed", "cancelled"),
               timeout: float = 120.0) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{id}`` until the job reaches one of ``states``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


def make_client(backend: Backend, tmp_path: Any, **config: Any) -> TestClient:
    """An in-process client of an app serving ``backend`` as ``fake`` (loopback Host names only)."""
    from sara.serve.security import LOOPBACK_HOST_NAMES

    cfg = ServeConfig(models=("fake",), output_dir=tmp_path / "out", **config)
    app = create_app(cfg, registry=ModelRegistry({"fake": backend}), allowed_hosts=LOOPBACK_HOST_NAMES)
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture
def client(fake: FakeBackend, tmp_path: Any) -> Iterator[TestClient]:
    with make_client(fake, tmp_path, batch_window=0.0) as c:
        yield c
