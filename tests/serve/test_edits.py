"""``POST /v1/edit``, ``/v1/inpaint`` and ``/v1/extend``: validation (422 with one line), the job's lifecycle
on a fake editor, refusal for systems that cannot edit, and a real tiny SARA pipeline whose served result
equals the library call with the same seed."""

from __future__ import annotations

import io

import pytest
import soundfile as sf
import torch

from tests.edit.conftest import edit_pipe  # noqa: F401 - the tiny editing pipeline fixture
from tests.serve.conftest import FAKE_RATE, FakeEditor, make_client, wait_state, wav_bytes, wav_seconds


def _run(client, path: str, seconds: float = 0.4) -> dict:
    r = client.post(path, content=wav_bytes(seconds), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    return wait_state(client, r.json()["id"])


def test_edit_inpaint_extend_jobs(client) -> None:
    FakeEditor.calls.clear()
    job = _run(client, "/v1/edit?prompt=rain&strength=0.3&seed=5&steps=7")
    assert job["kind"] == "edit" and job["state"] == "done" and job["progress"] == 1.0
    assert job["params"]["strength"] == 0.3 and job["params"]["seed"] == 5 and job["params"]["prompt"] == "rain"
    assert job["result"]["duration_s"] == pytest.approx(0.4)
    assert FakeEditor.calls[-1][0] == "variation" and FakeEditor.calls[-1][2]["steps"] == 7

    job = _run(client, "/v1/inpaint?prompt=a%20bird&start=0.1&end=0.2")
    audio = client.get(job["result"]["audio_url"]).content
    wav, sr = sf.read(io.BytesIO(audio))
    assert job["kind"] == "inpaint" and sr == FAKE_RATE and wav.shape == (round(0.4 * FAKE_RATE),)
    assert abs(wav[round(0.1 * sr):round(0.2 * sr)]).max() == 0 and abs(wav).max() > 0.1
    assert FakeEditor.calls[-1][2]["steps"] == 4  # the model's default steps

    job = _run(client, "/v1/extend?seconds=0.25&before=true")
    assert job["kind"] == "extend" and job["params"] | {"seconds": 0.25, "before": True} == job["params"]
    assert wav_seconds(client.get(job["result"]["audio_url"]).content) == pytest.approx(0.65)
    assert FakeEditor.calls[-1][1] == (0.25, None, True)  # no prompt: unconditional


@pytest.mark.parametrize("path, message", [
    ("/v1/edit?prompt=x&strength=1.5", "strength must be a number in [0, 1], got 1.5"),
    ("/v1/edit?prompt=%20", "prompt: is empty"),
    ("/v1/edit?prompt=x&steps=0", "steps: "),
    ("/v1/inpaint?prompt=x&start=0.3&end=0.2", "region must satisfy 0 <= start < end"),
    ("/v1/inpaint?prompt=x&start=0.1&end=0.9", "region end 0.9 s is outside the clip"),
    ("/v1/extend?seconds=0", "seconds must be in (0, 30] seconds"),
    ("/v1/extend?seconds=29.9", "seconds: the extended clip would be 30.3 s, the limit is 30 s"),
    ("/v1/inpaint?start=0&end=0.1", "prompt: "),
    ("/v1/edit?prompt=x&model=nope", "nope"),
])
def test_edit_validation(client, path: str, message: str) -> None:
    r = client.post(path, content=wav_bytes(0.4), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 422 and message in r.json()["error"], r.text
    assert not list((client.app.state.sara.store.output_dir).glob("*")), "nothing may stay on disk"


def test_edit_refuses_forms_and_models_without_an_editor(fake, tmp_path, monkeypatch) -> None:
    from sara.serve.backends import Backend

    monkeypatch.setattr(type(fake), "editor", Backend.editor)
    with make_client(fake, tmp_path) as client:
        r = client.post("/v1/edit?prompt=x", content=wav_bytes(0.2))
        assert r.status_code == 422 and "fake models cannot edit audio" in r.json()["error"]
    monkeypatch.undo()
    with make_client(fake, tmp_path) as client:
        r = client.post("/v1/edit?prompt=x", content=b"a=1", headers={"content-type": "multipart/form-data"})
        assert r.status_code == 415


def test_served_inpaint_equals_the_library_call(edit_pipe, tmp_path) -> None:  # noqa: F811
    from sara.serve.backends import SaraBackend

    clip = wav_bytes(1.2, 24000)
    with make_client(SaraBackend(edit_pipe, "sara-t2a"), tmp_path, batch_window=0.0) as client:
        r = client.post("/v1/inpaint?prompt=a%20dog&start=0.4&end=0.8&seed=3&steps=4&vocoder_steps=2",
                        content=clip, headers={"content-type": "application/octet-stream"})
        job = wait_state(client, r.json()["id"])
        assert job["state"] == "done", job
        served, sr = sf.read(io.BytesIO(client.get(job["result"]["audio_url"]).content), dtype="float32")
    wav, rate = sf.read(io.BytesIO(clip), dtype="float32")
    alone = edit_pipe.inpaint(torch.from_numpy(wav)[None], rate, "a dog", 0.4, 0.8, seed=3, steps=4,
                              vocoder_steps=2)[0]
    assert sr == edit_pipe.sample_rate and served.shape == tuple(alone.shape)
    torch.testing.assert_close(torch.from_numpy(served), alone, atol=2e-4, rtol=0)  # 16-bit WAV rounding


def test_edit_progress_is_monotone_and_bounded(edit_pipe) -> None:  # noqa: F811
    from sara.serve.config import Limits
    from sara.serve.edits import EditOptions, EditParams, EditQuery, resolve_options, run_edit

    wav = torch.randn(1, 24000) * 0.1
    for options in (EditOptions("edit", EditQuery(steps=6), prompt="x", strength=0.5),
                    EditOptions("extend", EditQuery(steps=3), seconds=0.5)):
        resolved = resolve_options(options, "tiny", {"steps": 100}, Limits())
        seen: list[float] = []
        out = run_edit(edit_pipe, EditParams(resolved, wav, 24000, 1.0), seen.append)
        assert seen and seen == sorted(seen) and 0 < seen[-1] <= 0.9
        assert out.ndim == 1 and out.shape[0] >= 24000
