"""The OpenAI-compatible dialect (API.md §3, seeds 001, 002, 004): synchronous /v1/audio/transcriptions
and /v1/audio/translations, and async /v1/transcription-jobs. Thin: form -> job -> the same pipeline."""

from __future__ import annotations

import dataclasses
import uuid

from aiohttp import web

from speechsvc.api.forms import Form, read_form
from speechsvc.api.keys import SERVICE
from speechsvc.api.middleware import REQUEST_ID_KEY, identity_of
from speechsvc.api.params import (
    check_unsupported,
    decoder_options,
    parse_bool,
    parse_crosstalk,
    parse_redact,
    parse_speakers,
)
from speechsvc.api.spec import JOBS_FORM, JOBS_QUERY, OPENAI_FORM, OPENAI_IGNORED, check_known
from speechsvc.audio.layout import parse_channel_labels, parse_channel_layout
from speechsvc.errors import Conflict, InvalidRequest, NotReady, RequestNotFound
from speechsvc.jobs.model import JobRequest, JobStatus
from speechsvc.results.formats import FormatSpec
from speechsvc.results.openai import parse_granularities, parse_response_format
from speechsvc.service.facade import Service, build_job_request
from speechsvc.service.views import openai_result, transcription_job_view
from speechsvc.store import Job

OPENAI_MODEL_ALIASES = frozenset({"whisper-1", ""})  # what OpenAI clients send: our default model
routes = web.RouteTableDef()


def form_job_request(
    service: Service,
    request: web.Request,
    form: Form,
    *,
    task: str,
    dialect: str,
    callback_url: str | None = None,
) -> JobRequest:
    """The job a form asks for: OpenAI's fields plus our channel_layout and channel_labels."""
    fields = form.fields
    check_known(
        [*fields, *form.lists], JOBS_FORM if dialect == "jobs" else OPENAI_FORM, "form field", OPENAI_IGNORED
    )
    check_unsupported(fields)
    given = form.lists.get("timestamp_granularities[]") or fields.get("timestamp_granularities", "").split(
        ","
    )
    granularities = parse_granularities([value.strip() for value in given if value.strip()])
    words = "word" in granularities or fields.get("timestamps_granularity", "").strip().lower() == "word"
    options = decoder_options({**fields, "word_timestamps": "true" if words else "false"})
    response_format = parse_response_format(fields.get("response_format"))
    if response_format == "diarized_json" and task != "transcribe":
        raise InvalidRequest("diarized_json is a transcription format", param="response_format")
    model = fields.get("model", "")
    job_request = build_job_request(
        service.registry,
        service.config,
        model=None if model in OPENAI_MODEL_ALIASES else model,
        layout=parse_channel_layout(fields.get("channel_layout")),
        labels=parse_channel_labels(fields.get("channel_labels")),
        language=fields.get("language"),
        task=task,
        options=options,
        format=FormatSpec("json"),
        callback_url=callback_url,
        userdata=None,
    )
    retain = parse_bool(fields, "retain", True) and parse_bool(fields, "enable_logging", True)
    return dataclasses.replace(
        job_request,
        retain=retain,
        crosstalk=parse_crosstalk(fields),
        speakers=parse_speakers(fields, implied=response_format == "diarized_json"),
        redaction=parse_redact(form.repeated.get("redact", []), fields),
        x_request_id=request[REQUEST_ID_KEY],
        dialect=dialect,
        response_format=response_format,
        granularities=granularities,
    )


async def submit_form(request: web.Request, *, task: str, dialect: str) -> Job:
    """Read the form, check it, accept the job (202 semantics: stored durably, probed)."""
    service = request.app[SERVICE]
    identity = identity_of(request)
    await service.check_queue(identity)
    job_id = uuid.uuid4().hex
    spooled = service.config.spool_dir / f"{job_id}.upload"
    form = await read_form(request, spooled, service.config.max_upload_bytes, service.disk)
    try:
        callback_url = form.fields.get("callback_url") or None
        job_request = form_job_request(
            service, request, form, task=task, dialect=dialect, callback_url=callback_url
        )
    except BaseException:
        spooled.unlink(missing_ok=True)
        raise
    return await service.accept(job_id, spooled, form.file_bytes, form.media_type, job_request, identity)


async def synchronous(request: web.Request, task: str) -> web.Response:
    service = request.app[SERVICE]
    job = await submit_form(request, task=task, dialect="openai")
    finished = await service.finished(job.id, "use /v1/transcription-jobs for long recordings")
    body, content_type = openai_result(finished)
    await service.forget_unless_retained(finished)  # enable_logging=false: nothing outlives the answer
    return web.Response(text=body, content_type=content_type, headers={"x-requestid": job.id})


@routes.post("/v1/audio/transcriptions")
async def transcriptions(request: web.Request) -> web.Response:
    return await synchronous(request, "transcribe")


@routes.post("/v1/audio/translations")
async def translations(request: web.Request) -> web.Response:
    return await synchronous(request, "translate")


@routes.post("/v1/transcription-jobs")
async def create_job(request: web.Request) -> web.Response:
    check_known(request.query.keys(), JOBS_QUERY, "query parameter")
    job = await submit_form(request, task=request.query.get("task", "transcribe"), dialect="jobs")
    return web.json_response(
        transcription_job_view(job), status=202, headers={"Location": f"/v1/transcription-jobs/{job.id}"}
    )


async def _job(request: web.Request) -> Job:
    message = "no transcription job with this id"
    job = await request.app[SERVICE].job_for(identity_of(request), request.match_info["job_id"], message)
    if job.request.dialect != "jobs":
        raise RequestNotFound(message, param="job_id")
    return job


@routes.get("/v1/transcription-jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    return web.json_response(transcription_job_view(await _job(request)))


@routes.get("/v1/transcription-jobs/{job_id}/result")
async def job_result(request: web.Request) -> web.Response:
    job = await _job(request)
    if job.result is None or job.status not in (JobStatus.READY, JobStatus.COMPLETED):
        view = transcription_job_view(job)
        raise NotReady(
            f"the job is {view['status']}" + (f": {job.error}" if job.error else ""),
            extra={"status": view["status"]},
        )
    body, content_type = openai_result(job)
    await request.app[SERVICE].forget_unless_retained(job)
    return web.Response(text=body, content_type=content_type)


@routes.post("/v1/transcription-jobs/{job_id}/cancel")
async def cancel_job(request: web.Request) -> web.Response:
    job = await _job(request)
    canceled = await request.app[SERVICE].cancel(job.id)
    if canceled is None:
        raise Conflict(f"the job is already {transcription_job_view(job)['status']}", param="job_id")
    return web.json_response(transcription_job_view(canceled))
