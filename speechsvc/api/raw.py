"""The raw-binary dialect (API.md §1, AppTek semantics): POST the audio bytes, poll, get a callback."""

from __future__ import annotations

import dataclasses
import uuid

from aiohttp import web

from speechsvc.api.body import spool_body
from speechsvc.api.keys import SERVICE
from speechsvc.api.middleware import REQUEST_ID_KEY, identity_of
from speechsvc.api.params import (
    check_unsupported,
    decoder_options,
    parse_bool,
    parse_crosstalk,
    parse_number,
    parse_redact,
    parse_speakers,
)
from speechsvc.api.spec import RAW_AUDIO, RAW_POLL, RAW_SUBMIT, check_known
from speechsvc.audio.layout import parse_channel_labels, parse_channel_layout
from speechsvc.audio.media import is_accepted_media_type
from speechsvc.delivery.callbacks import header_safe
from speechsvc.errors import RequestNotFound, UnsupportedMediaType
from speechsvc.jobs.model import JobStatus
from speechsvc.results.formats import FormatSpec, parse_format
from speechsvc.results.render import render
from speechsvc.service.facade import build_job_request
from speechsvc.store import Job

MAX_WAIT_S = 300.0
routes = web.RouteTableDef()


@routes.post("/v1/transcribe")
async def submit(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    query = request.query
    check_known(query.keys(), RAW_SUBMIT, "query parameter")
    check_unsupported(query)
    job_request = build_job_request(
        service.registry,
        service.config,
        model=query.get("model"),
        layout=parse_channel_layout(query.get("channel_layout")),
        labels=parse_channel_labels(query.get("channel_labels")),
        language=query.get("language"),
        task=query.get("task", "transcribe"),
        options=decoder_options(query),
        format=parse_format(query.get("format")),
        callback_url=query.get("callback") or request.headers.get("x-callback-url"),
        userdata=query.get("userdata") or request.headers.get("x-userdata"),
    )
    job_request = dataclasses.replace(
        job_request,
        x_request_id=request[REQUEST_ID_KEY],
        retain=parse_bool(query, "retain", True),
        crosstalk=parse_crosstalk(query),
        speakers=parse_speakers(query),
        redaction=parse_redact(query.getall("redact", []), query),
    )
    wait_s = parse_number(query, "wait", 0.0, 0.0, MAX_WAIT_S)
    if not is_accepted_media_type(request.content_type):
        raise UnsupportedMediaType(f"Content-Type {request.content_type!r} is not an accepted audio type")
    identity = identity_of(request)
    await service.check_queue(identity)  # 503/429 before the body is stored
    job_id = uuid.uuid4().hex
    spooled = service.config.spool_dir / f"{job_id}.upload"
    size = await spool_body(request, spooled, service.config.max_upload_bytes, service.disk)
    await service.accept(job_id, spooled, size, request.content_type, job_request, identity)
    if wait_s > 0:
        job = await service.wait(job_id, wait_s)
        if job is not None and job.status.finished:
            answer = job_response(job, None, with_body=True)
            if answer.status == 200 and job.result is not None:
                await service.forget_unless_retained(job)
            return answer
    return web.json_response(
        {"request_id": job_id, "success": True, "error": None, "status": JobStatus.QUEUED.value},
        status=202,
        headers={
            "x-requestid": job_id,
            "x-status": JobStatus.QUEUED.value,
            "Location": f"/v1/transcribe/{job_id}",
        },
    )


@routes.get("/v1/transcribe/{request_id}")  # HEAD too: aiohttp answers it with the same headers
async def status(request: web.Request) -> web.StreamResponse:
    check_known(request.query.keys(), RAW_POLL, "query parameter")
    job = await request.app[SERVICE].job_for(identity_of(request), request.match_info["request_id"])
    spec = parse_format(request.query["format"]) if "format" in request.query else None
    answer = job_response(job, spec, with_body=request.method != "HEAD")
    if request.method == "GET" and answer.status == 200 and job.result is not None:
        await request.app[SERVICE].forget_unless_retained(job)  # retain=false: delivered once
    return answer


@routes.get("/v1/transcribe/{request_id}/audio")
async def redacted_audio(request: web.Request) -> web.Response:
    """The redacted copy of a finished job's audio (redact_audio=…), in `format`."""
    check_known(request.query.keys(), RAW_AUDIO, "query parameter")
    service = request.app[SERVICE]
    job = await service.job_for(identity_of(request), request.match_info["request_id"])
    body, content_type = await service.redacted_audio(job, request.query.get("format") or "wav")
    return web.Response(body=body, content_type=content_type, headers={"x-requestid": job.id})


@routes.delete("/v1/transcribe/{request_id}")
async def delete(request: web.Request) -> web.StreamResponse:
    check_known(request.query.keys(), {}, "query parameter")
    service = request.app[SERVICE]
    owned = await service.job_for(identity_of(request), request.match_info["request_id"])
    job = await service.store.delete(owned.id)
    if job is None:
        raise RequestNotFound(param="request_id")
    await service.store.delete_audio(job.id)  # a worker running it stops at its next progress write
    return web.Response(status=204, headers={"x-requestid": job.id, "x-status": JobStatus.CANCELED.value})


def job_headers(job: Job) -> dict[str, str]:
    headers = {"x-requestid": job.id, "x-status": job.status.value, "x-progress": str(int(job.progress))}
    if job.request.userdata is not None:
        headers["x-userdata"] = job.request.userdata
    if job.status == JobStatus.FAILED:
        headers["x-error"] = header_safe(job.error or "failed")
    return headers


def job_response(job: Job, spec: FormatSpec | None, *, with_body: bool) -> web.Response:
    """The status-poll answer: 204 while working, the result (or error text) once finished."""
    headers = job_headers(job)
    if not job.status.finished:
        return web.Response(status=204, headers=headers)
    if job.status == JobStatus.FAILED:
        return web.Response(
            text=(job.error or "failed") if with_body else None, headers=headers, content_type="text/plain"
        )
    if job.status == JobStatus.CANCELED or job.result is None:
        return web.Response(status=200, headers=headers)
    spec = spec or job.request.format
    result = {**job.result, "status": job.status.value}
    if job.callback_outcome is not None:
        result["callback"] = job.callback_outcome
    body = render(result, spec)
    return web.Response(
        body=body.encode() if with_body else None,
        headers=headers,
        content_type=spec.content_type.split(";")[0],
        charset="utf-8",
    )
