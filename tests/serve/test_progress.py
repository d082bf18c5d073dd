"""Per-step progress of the latent-diffusion, DC-LDM and AudioGen backends (through :mod:`sara.progress`), and
cancellation from inside their sampling loops."""

from __future__ import annotations

import pytest

from sara.progress import progress_hook, report
from sara.serve.config import Limits
from sara.serve.limits import GenerateRequest
from tests.dcldm.conftest import t5  # noqa: F401 - the tiny T5 fixture
from tests.dcldm.fixtures import tiny_audiogen, tiny_ldm


def test_report_reaches_only_the_active_hook() -> None:
    seen: list[tuple[str, int, int]] = []
    report("diffusion", 1, 2)  # no hook: nothing happens
    with progress_hook(lambda *a: seen.append(a)):
        report("tokens", 1, 3)
    report("tokens", 2, 3)
    assert seen == [("tokens", 1, 3)]


def _fractions(backend, **request) -> list[float]:
    params = backend.resolve(GenerateRequest(prompt="a dog barks", seed=1, **request), "m", Limits())
    seen: list[float] = []
    wavs = backend.generate([params], seen.append)
    assert len(wavs) == 1 and wavs[0].numel() > 0
    return seen


def test_ldm_and_dcldm_report_every_step(t5) -> None:  # noqa: F811
    from sara.dcldm.pipeline import DCLDM
    from sara.serve.backends import LatentDiffusionBackend

    seen = _fractions(LatentDiffusionBackend(tiny_ldm(t5), "sara-ldm"), duration=0.32, steps=3)
    assert seen == pytest.approx([0.3, 0.6, 0.9])
    dual = DCLDM.from_latent_diffusion(tiny_ldm(t5), tiny_audiogen(t5))
    seen = _fractions(LatentDiffusionBackend(dual, "sara-dcldm"), duration=0.32, steps=2)
    tokens = [f for f in seen if f <= 0.45]
    assert seen == sorted(seen) and len(tokens) > 10 and seen[-2:] == pytest.approx([0.675, 0.9])


def test_audiogen_reports_tokens_and_a_hook_can_cancel(t5) -> None:  # noqa: F811
    from sara.serve.backends import AudioGenBackend

    backend = AudioGenBackend(tiny_audiogen(t5), "sara-audiogen")
    seen = _fractions(backend, duration=0.2)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(0.9) and len(seen) >= 10

    class Stop(Exception):
        pass

    def stop(_fraction: float) -> None:
        raise Stop

    params = backend.resolve(GenerateRequest(prompt="x", duration=0.2), "m", Limits())
    with pytest.raises(Stop):
        backend.generate([params], stop)
