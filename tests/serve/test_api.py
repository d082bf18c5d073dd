"""The HTTP API through an in-process client: every endpoint, validation, queue limits, cancellation,
result expiry, authentication and the Host / CORS rules."""

from __future__ import annotations

import json
import time

import pytest

from sara.serve.security import check_bind, is_loopback
from tests.serve.conftest import FAKE_RATE, make_client, wait_state, wav_bytes, wav_seconds


def generate(client, **body):  # noqa: ANN001, ANN201
    return client.post("/v1/generate", json={"prompt": "a dog barks", **body})


def test_health_and_models(client) -> None:
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["queued"] == 0 and health.json()["models"] == ["fake"]
    models = client.get("/v1/models").json()
    assert models["default"] == "fake"
    assert models["models"][0] == {"name": "fake", "default": True, "loaded": True, "system": "fake", "kind": "fake",
                                   "sample_rate": FAKE_RATE, "defaults": {"duration": 0.5, "steps": 4,
                                                                          "guidance": 3.0, "vocoder_steps": None}}
    assert models["limits"]["max_steps"] == 200


def test_generate_poll_download(client, fake) -> None:
    accepted = generate(client, duration=0.25, seed=7)
    assert accepted.status_code == 202 and accepted.headers["location"] == f"/v1/jobs/{accepted.json()['id']}"
    job = wait_state(client, accepted.json()["id"])
    assert job["state"] == "done" and job["progress"] == 1.0 and job["error"] is None
    assert job["params"] == {"prompt": "a dog barks", "negative_prompt": None, "duration": 0.25, "steps": 4,
                             "guidance": 3.0, "vocoder_steps": None, "seed": 7, "format": "wav"}
    assert job["result"]["duration_s"] == pytest.approx(0.25) and job["result"]["sample_rate"] == FAKE_RATE
    audio = client.get(job["result"]["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF" and wav_seconds(audio.content) == pytest.approx(0.25)
    assert audio.headers["content-disposition"].startswith("inline")
    assert client.get(job["result"]["audio_url"] + "?download=1").headers["content-disposition"].startswith(
        "attachment")
    png = client.get(job["result"]["spectrogram_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert fake.calls == [1]


def test_flac_and_drawn_seed(client) -> None:
    job = wait_state(client, generate(client, format="flac").json()["id"])
    audio = client.get(job["result"]["audio_url"])
    assert audio.headers["content-type"] == "audio/flac" and audio.content[:4] == b"fLaC"
    assert wav_seconds(audio.content) == pytest.approx(0.5)  # the model's default duration
    assert isinstance(job["params"]["seed"], int)  # drawn and reported, so the result can be reproduced


@pytest.mark.parametrize("body, message", [
    ({"prompt": "  "}, "prompt: is empty"),
    ({"prompt": "x" * 501}, "prompt: 501 characters, the limit is 500"),
    ({"negative_prompt": ""}, "negative_prompt: is empty"),
    ({"steps": 0}, "steps: must be an integer in [1, 10000], got 0"),
    ({"steps": 201}, "steps: 201 steps, the limit is 200"),
    ({"steps": 2.5}, "steps: Input should be a valid integer"),
    ({"duration": 0}, "duration: must be a finite number in (0, 600], got 0.0"),
    ({"duration": 31}, "duration: 31 s, the limit is 30 s"),
    ({"guidance": 101}, "guidance: must be a finite number in [0, 100], got 101.0"),
    ({"seed": -1}, "seed: must be an integer in [0, 4294967295], got -1"),
    ({"seed": True}, "seed: Input should be a valid integer"),
    ({"format": "mp3"}, "format: Input should be 'wav' or 'flac'"),
    ({"model": "nope"}, "model: unknown model 'nope' (see GET /v1/models: fake)"),
    ({"vocoder_steps": 4}, "vocoder_steps does not apply to fake models"),
    ({"colour": "red"}, "colour: Extra inputs are not permitted"),
])
def test_validation_errors_are_one_line_422(client, fake, body, message) -> None:
    r = generate(client, **body)
    assert r.status_code == 422
    assert r.json() == {"error": message}
    assert fake.calls == []


def test_missing_prompt_and_bad_json(client) -> None:
    assert client.post("/v1/generate", json={}).json() == {"error": "prompt: Field required"}
    r = client.post("/v1/generate", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "\n" not in r.json()["error"]


def test_queue_full_answers_429_with_retry_after(fake, tmp_path) -> None:
    fake.gate.clear()
    with make_client(fake, tmp_path, queue_size=2, batch_window=0.0, batching=False) as client:
        running = generate(client).json()["id"]
        assert fake.entered.wait(10)  # the worker holds the first job; the queue is empty again
        queued = [generate(client).status_code for _ in range(2)]
        refused = generate(client)
        assert queued == [202, 202] and refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1 and "queue is full" in refused.json()["error"]
        assert client.get("/health").json()["queued"] == 2
        fake.gate.set()
        assert wait_state(client, running)["state"] == "done"


def test_cancel_queued_and_running(fake, tmp_path) -> None:
    fake.gate.clear()
    with make_client(fake, tmp_path, batch_window=0.0, batching=False) as client:
        running = generate(client, prompt="first").json()["id"]
        assert fake.entered.wait(10)
        queued = generate(client, prompt="second").json()["id"]
        assert client.delete(f"/v1/jobs/{queued}").json()["state"] == "cancelled"
        assert client.delete(f"/v1/jobs/{running}").json()["state"] == "cancelled"
        fake.gate.set()
        assert wait_state(client, running)["state"] == "cancelled"
        after = wait_state(client, generate(client, prompt="third").json()["id"])
        assert after["state"] == "done"
        assert fake.prompts == [["first"], ["third"]]  # the cancelled queued job never ran
        assert client.get(f"/v1/jobs/{running}/audio").status_code == 409


def test_delete_finished_job_removes_its_files(client, tmp_path) -> None:
    job = wait_state(client, generate(client).json()["id"])
    client.get(job["result"]["spectrogram_url"])
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [f"{job['id']}.png", f"{job['id']}.wav"]
    assert client.delete(f"/v1/jobs/{job['id']}").json() == {"id": job["id"], "state": "deleted"}
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert list((tmp_path / "out").iterdir()) == []


def test_results_expire(fake, tmp_path) -> None:
    with make_client(fake, tmp_path, batch_window=0.0, result_ttl=0.2) as client:
        job = wait_state(client, generate(client).json()["id"])
        assert (tmp_path / "out" / f"{job['id']}.wav").is_file()
        time.sleep(0.3)
        client.get("/health")  # runs the expiry
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
        assert not (tmp_path / "out" / f"{job['id']}.wav").exists()


def test_unknown_jobs_and_paths(client) -> None:
    assert client.get("/v1/jobs/0123").json() == {"error": "no job '0123' (unknown, deleted or expired)"}
    for path in ("/v1/jobs/..%2F..%2Fetc%2Fpasswd/audio", "/v1/jobs/%2Fetc%2Fpasswd/audio",
                 "/static/..%2F..%2F__init__.py", "/static/../api.py"):
        assert client.get(path).status_code == 404, path


def test_audio_before_done_is_409(fake, tmp_path) -> None:
    fake.gate.clear()
    with make_client(fake, tmp_path, batch_window=0.0) as client:
        job_id = generate(client).json()["id"]
        assert fake.entered.wait(10)
        r = client.get(f"/v1/jobs/{job_id}/audio")
        assert r.status_code == 409 and r.json()["error"] == f"job {job_id} has no audio (state: running)"
        fake.gate.set()


def test_progress_events(client) -> None:
    job_id = generate(client, steps=5).json()["id"]
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = stream.read().decode()
    events = [(block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1].removeprefix("data: ")))
              for block in text.strip().split("\n\n") if block.startswith("event:")]
    assert events[-1][0] == "done" and events[-1][1]["state"] == "done"
    assert all(name == "progress" for name, _ in events[:-1])
    progress = [job["progress"] for _, job in events]
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_reconstruct_upload(client) -> None:
    r = client.post("/v1/reconstruct?steps=3&seed=1", content=wav_bytes(0.4),
                    headers={"content-type": "application/octet-stream"})
    assert r.status_code == 202
    job = wait_state(client, r.json()["id"])
    assert job["kind"] == "reconstruct" and job["state"] == "done"
    assert job["params"] == {"steps": 3, "seed": 1, "format": "wav", "input_duration_s": pytest.approx(0.4)}
    assert wav_seconds(client.get(job["result"]["audio_url"]).content) == pytest.approx(0.4)


def test_reconstruct_refuses_bad_uploads(fake, tmp_path) -> None:
    from sara.serve.config import Limits

    with make_client(fake, tmp_path, limits=Limits(max_upload_bytes=10_000, max_duration=1.0)) as client:
        assert client.post("/v1/reconstruct", content=b"").json() == {"error": "file: the upload is empty"}
        too_big = client.post("/v1/reconstruct", content=b"\0" * 10_001)
        assert too_big.status_code == 422 and "larger than the limit of 10000 bytes" in too_big.json()["error"]
        garbage = client.post("/v1/reconstruct", content=b"not audio at all")
        assert garbage.status_code == 422 and garbage.json()["error"].startswith("upload: cannot read audio")
        assert str(tmp_path) not in garbage.json()["error"]  # the server's paths are not shown
        long = client.post("/v1/reconstruct", content=wav_bytes(2.0, 2000))
        assert long.status_code == 422 and "longer than the 1 s limit" in long.json()["error"]
        assert client.post("/v1/reconstruct?steps=0", content=wav_bytes(0.1)).status_code == 422
        for form in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            r = client.post("/v1/reconstruct", content=wav_bytes(0.1), headers={"content-type": form})
            assert r.status_code == 415 and "must be the audio file's bytes" in r.json()["error"]
        assert list((tmp_path / "out").iterdir()) == []  # refused uploads leave nothing behind
        assert fake.calls == []


def test_token_is_required_when_set(fake, tmp_path) -> None:
    with make_client(fake, tmp_path, token="s3cret") as client:
        missing = client.get("/v1/models")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.post("/v1/generate", json={"prompt": "x"}).status_code == 401
        assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/health").status_code == 200 and client.get("/").status_code == 200


def test_non_loopback_bind_needs_token_or_insecure() -> None:
    from sara.errors import ConfigError

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.com")
    with pytest.raises(ConfigError, match="--host 0.0.0.0 is reachable from other machines: give --token"):
        check_bind("0.0.0.0", None, insecure=False)
    check_bind("0.0.0.0", "t", insecure=False)
    check_bind("0.0.0.0", None, insecure=True)
    check_bind("127.0.0.1", None, insecure=False)


def test_foreign_host_and_cors(client) -> None:
    assert client.get("/health", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding
    r = client.get("/v1/models", headers={"origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    pre = client.options("/v1/generate", headers={"origin": "https://evil.example",
                                                  "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in pre.headers


def test_page_and_docs_are_offline(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert "http://" not in text and "https://" not in text  # nothing fetched from elsewhere
    schema = client.get("/openapi.json").json()
    assert {"/v1/generate", "/v1/reconstruct", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/audio",
            "/v1/jobs/{job_id}/events", "/v1/models", "/health"} <= set(schema["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
