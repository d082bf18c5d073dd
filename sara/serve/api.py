"""The JSON API under ``/v1``: generate, reconstruct, edit / inpaint / extend, jobs (state, server-sent events, audio, spectrogram,
cancel) and the model list.  Every endpoint needs the bearer token when the server has one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse

from sara.serve.config import Limits, ServeConfig
from sara.serve.edits import (
    EditOptions,
    EditParams,
    EditQuery,
    check_edit_audio,
    check_edit_options,
    resolve_options,
)
from sara.serve.jobs import Scheduler
from sara.serve.limits import (
    AudioFormat,
    GenerateRequest,
    ReconstructParams,
    check_generate,
    check_reconstruct,
    check_upload_size,
    draw_seed,
)
from sara.serve.registry import ModelRegistry
from sara.serve.security import bearer_auth
from sara.serve.store import FINISHED, Job, JobStore, new_job_id

__all__ = ["ServerState", "router"]

MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac"}
SSE_POLL_S = 0.1  # how often an event stream looks at its job
SSE_KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream


@dataclass
class ServerState:
    """What the endpoints share (``app.state.sara``)."""

    config: ServeConfig
    registry: ModelRegistry
    store: JobStore
    scheduler: Scheduler
    started: float


def _state(request: Request) -> ServerState:
    return request.app.state.sara


def _auth(request: Request) -> None:
    bearer_auth(_state(request).config.token)(request)


router = APIRouter(prefix="/v1", dependencies=[Depends(_auth)])


def _accepted(job: Job, response: Response) -> dict[str, Any]:
    """The 202 answer to a submission: the job id and where to follow it."""
    response.status_code = 202
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return {"id": job.id, "state": job.state, "url": f"/v1/jobs/{job.id}", "events_url": f"/v1/jobs/{job.id}/events"}


@router.get("/models")
def list_models(request: Request) -> dict[str, Any]:
    """The models this server offers (default first), whether each is loaded, and the request limits."""
    s = _state(request)
    return {"models": s.registry.describe(), "default": s.registry.default, "limits": vars(s.config.limits)}


@router.post("/generate", status_code=202)
def generate(req: GenerateRequest, request: Request, response: Response) -> dict[str, Any]:
    """Queue a text-to-audio job; answers at once with its id (422: bad options, 429: the queue is full)."""
    s = _state(request)
    check_generate(req, s.config.limits)
    backend = s.registry.get(req.model)  # loads the model on first use
    params = backend.resolve(req, req.model or s.registry.default, s.config.limits)
    s.store.expire()
    return _accepted(s.scheduler.submit(Job(params)), response)


UPLOAD_BODY = {"requestBody": {"required": True, "description": "the audio file's bytes (WAV, FLAC, OGG, MP3...)",
                               "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                   "format": "binary"}}}}}


@router.post("/reconstruct", status_code=202, openapi_extra=UPLOAD_BODY)
async def reconstruct(request: Request, response: Response, model: str | None = None, steps: int | None = None,
                      seed: int | None = None, format: AudioFormat = "wav") -> dict[str, Any]:  # noqa: A002
    """Queue a reconstruction of the uploaded audio (the request body) through the model's own latent
    space (``steps``: vocoder / sampler steps where the model has them)."""
    s = _state(request)
    check_reconstruct(steps, seed, s.config.limits)
    name = model or s.registry.default
    await run_in_threadpool(lambda: s.registry.get(name).reconstructor())  # unknown model / no encoder: 422
    job_id, wav, sr = await _receive_clip(request, s)
    params = ReconstructParams(name, wav, sr, steps, draw_seed() if seed is None else seed, format,
                               input_seconds=wav.shape[-1] / sr)
    return _accepted(s.scheduler.submit(Job(params, id=job_id)), response)


@router.post("/edit", status_code=202, openapi_extra=UPLOAD_BODY)
async def edit(request: Request, response: Response, prompt: str, strength: float = 0.5,
               q: EditQuery = Depends()) -> dict[str, Any]:
    """Queue a variation of the uploaded clip guided by ``prompt`` (``strength`` 0: the reconstruction,
    1: fresh generation of the clip's length), as ``sara edit``."""
    return await _submit_edit(request, response, EditOptions("edit", q, prompt=prompt, strength=strength))


@router.post("/inpaint", status_code=202, openapi_extra=UPLOAD_BODY)
async def inpaint(request: Request, response: Response, prompt: str, start: float, end: float,
                  q: EditQuery = Depends()) -> dict[str, Any]:
    """Queue a regeneration of seconds ``[start, end)`` of the uploaded clip with ``prompt``; the rest is
    the clip's reconstruction (as ``sara inpaint``)."""
    return await _submit_edit(request, response, EditOptions("inpaint", q, prompt=prompt, start=start, end=end))


@router.post("/extend", status_code=202, openapi_extra=UPLOAD_BODY)
async def extend(request: Request, response: Response, seconds: float, prompt: str | None = None,
                 before: bool = False, q: EditQuery = Depends()) -> dict[str, Any]:
    """Queue a continuation of the uploaded clip by ``seconds`` after it (``before``: ahead of it), with
    ``prompt`` or unconditionally (as ``sara extend``)."""
    return await _submit_edit(request, response,
                              EditOptions("extend", q, prompt=prompt, seconds=seconds, before=before))


async def _submit_edit(request: Request, response: Response, options: EditOptions) -> dict[str, Any]:
    """Check the options, that the model can edit, then receive and check the clip, and queue the job."""
    s = _state(request)
    check_edit_options(options, s.config.limits)
    name = options.model or s.registry.default
    backend = await run_in_threadpool(s.registry.get, name)
    await run_in_threadpool(backend.editor)  # 422 for systems that cannot edit
    job_id, wav, sr = await _receive_clip(request, s)
    check_edit_audio(options, wav.shape[-1] / sr, s.config.limits)
    resolved = resolve_options(options, name, backend.defaults(), s.config.limits)
    params = EditParams(resolved, wav, sr, input_seconds=wav.shape[-1] / sr)
    return _accepted(s.scheduler.submit(Job(params, id=job_id)), response)


async def _receive_clip(request: Request, s: ServerState) -> tuple[str, Any, int]:
    """A new job id and the uploaded clip ``[C, T]`` and its rate (the upload file is deleted again)."""
    _refuse_form_bodies(request)
    job_id = new_job_id()
    upload = s.store.path(job_id, "upload")
    await _receive_upload(request, upload, s.config.limits)
    wav, sr = await run_in_threadpool(_decode_upload, upload, s.config.limits.max_duration)
    return job_id, wav, sr


# the content types a cross-site HTML form can send without a CORS preflight: an upload is never one of them
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")


def _refuse_form_bodies(request: Request) -> None:
    """415 for form / text bodies, so that another site's page cannot queue work on a loopback server."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in FORM_TYPES:
        raise HTTPException(415, f"the upload must be the audio file's bytes (e.g. application/octet-stream), "
                                 f"not {kind}")


async def _receive_upload(request: Request, path: Path, limits: Limits) -> None:
    """Stream the request body into ``path``, refusing (and deleting) more than ``max_upload_bytes``."""
    size = 0
    try:
        with open(path, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_upload_bytes:
                    check_upload_size(size, limits)  # raises
                f.write(chunk)
        check_upload_size(size, limits)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _decode_upload(path: Path, max_duration: float) -> tuple[Any, int]:
    """Decode an upload (deleted afterwards); AudioError names it ``upload``, not the server's path."""
    from sara.audio.io import load_audio
    from sara.errors import AudioError

    try:
        return load_audio(path, max_duration=max_duration)
    except AudioError as exc:
        raise AudioError(str(exc).replace(str(path), "upload")) from None
    finally:
        path.unlink(missing_ok=True)


def _job(request: Request, job_id: str) -> Job:
    job = _state(request).store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r} (unknown, deleted or expired)")
    return job


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    """A job's state: queued / running (with ``progress``), done (with ``result``), failed (with the
    one-line ``error``) or cancelled."""
    return _job(request, job_id).public()


@router.delete("/jobs/{job_id}")
def delete_job(job_id: str, request: Request) -> dict[str, Any]:
    """Cancel a queued or running job; a finished job is deleted with its files."""
    s, job = _state(request), _job(request, job_id)
    if job.state in FINISHED:
        s.store.delete(job)
        return {"id": job.id, "state": "deleted"}
    s.scheduler.cancel(job)
    return job.public()


@router.get("/jobs/{job_id}/events")
async def job_events(job_id: str, request: Request) -> StreamingResponse:
    """Server-sent events: a ``progress`` event whenever the state or progress changes, then one final
    ``done`` / ``failed`` / ``cancelled`` event; each carries the job JSON."""
    job = _job(request, job_id)
    return StreamingResponse(_event_stream(job), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _event_stream(job: Job) -> AsyncIterator[str]:
    last, quiet_since = None, time.monotonic()
    while True:
        snapshot = (job.state, round(job.progress, 3))
        if snapshot != last:
            name = job.state if job.state in FINISHED else "progress"
            yield f"event: {name}\ndata: {json.dumps(job.public())}\n\n"
            last, quiet_since = snapshot, time.monotonic()
        elif time.monotonic() - quiet_since > SSE_KEEPALIVE_S:
            yield ": keepalive\n\n"
            quiet_since = time.monotonic()
        if job.state in FINISHED:
            return
        await asyncio.sleep(SSE_POLL_S)


def _finished_audio(request: Request, job_id: str) -> Job:
    job = _job(request, job_id)
    if job.state != "done" or job.audio is None or not job.audio.is_file():
        raise HTTPException(409, f"job {job_id} has no audio (state: {job.state})")
    return job


@router.get("/jobs/{job_id}/audio", response_class=FileResponse,
            responses={200: {"content": {"audio/wav": {}, "audio/flac": {}}}})
def job_audio(job_id: str, request: Request, download: bool = Query(False)) -> FileResponse:
    """The result as WAV or FLAC (``?download=1``: as an attachment); 409 until the job is done."""
    job = _finished_audio(request, job_id)
    fmt = job.params.format
    return FileResponse(job.audio, media_type=MEDIA_TYPES[fmt], filename=f"sara-{job.id}.{fmt}",
                        content_disposition_type="attachment" if download else "inline")


@router.get("/jobs/{job_id}/spectrogram.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def job_spectrogram(job_id: str, request: Request) -> Response:
    """The result's spectrogram (PNG, drawn on first request and kept with the result)."""
    s, job = _state(request), _finished_audio(request, job_id)
    png = s.store.path(job.id, "png")
    if not png.is_file():
        from sara.audio.io import load_audio
        from sara.outputs import write_output_atomically
        from sara.serve.render import spectrogram_png

        wav, sr = load_audio(job.audio, mono=True)
        data = spectrogram_png(wav[0], sr)
        write_output_atomically(png, lambda f: f.write(data))
    return Response(png.read_bytes(), media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
