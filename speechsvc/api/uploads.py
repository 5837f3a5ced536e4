"""Large uploads and async audio jobs (API.md §4, seed 000): create an upload, PUT its bytes (resumable
with Content-Range), complete it, then create a job from it."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from aiohttp import web

from speechsvc.api.body import CHUNK_BYTES, read_json
from speechsvc.api.keys import SERVICE, UPLOADS
from speechsvc.api.middleware import REQUEST_ID_KEY, identity_of
from speechsvc.api.params import (
    decoder_options,
    parse_bool,
    parse_crosstalk,
    parse_redact_json,
    parse_speakers,
)
from speechsvc.api.spec import (
    AUDIO_JOB,
    SPEAKER_FIELDS,
    UPLOAD_COMPLETE,
    UPLOAD_CONTENT,
    UPLOAD_CREATE,
    check_known,
)
from speechsvc.audio.layout import parse_channel_labels, parse_channel_layout
from speechsvc.errors import InvalidRequest, RequestNotFound
from speechsvc.results.formats import parse_format
from speechsvc.service.facade import build_job_request
from speechsvc.service.uploads import upload_view
from speechsvc.service.views import audio_job_view

routes = web.RouteTableDef()


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", param=name)
    return value


def _absolute(request: web.Request, view: dict[str, Any]) -> dict[str, Any]:
    if "upload_url" in view:
        view["upload_url"] = f"{request.url.origin()}{view['upload_url']}"
    return view


@routes.post("/v1/audio/uploads")
async def create_upload(request: web.Request) -> web.Response:
    body = await read_json(request)
    check_known(body, UPLOAD_CREATE, "field")
    size = body.get("size_bytes")
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidRequest("size_bytes must be an integer", param="size_bytes")
    created = await request.app[UPLOADS].create(
        _text(body, "file_name") or "", _text(body, "mime_type") or "", size, identity_of(request)
    )
    return web.json_response(_absolute(request, upload_view(created.upload, created.token)), status=201)


@routes.put("/v1/audio/uploads/{upload_id}/content")  # authorised by the token in the URL, not an API key
async def put_content(request: web.Request) -> web.Response:
    check_known(request.query.keys(), UPLOAD_CONTENT, "query parameter")
    upload = await request.app[UPLOADS].put_piece(
        request.match_info["upload_id"],
        request.query.get("token", ""),
        request.headers.get("Content-Range"),
        request.content_length,
        request.content.iter_chunked(CHUNK_BYTES),
    )
    return web.json_response(upload_view(upload))


@routes.get("/v1/audio/uploads/{upload_id}")
async def get_upload(request: web.Request) -> web.Response:
    upload = await request.app[UPLOADS].owned(identity_of(request), request.match_info["upload_id"])
    return web.json_response(upload_view(upload))


@routes.delete("/v1/audio/uploads/{upload_id}")
async def delete_upload(request: web.Request) -> web.Response:
    upload_id = request.match_info["upload_id"]
    await request.app[UPLOADS].delete(identity_of(request), upload_id)
    return web.json_response({"id": upload_id, "object": "upload", "deleted": True})


@routes.post("/v1/audio/uploads/{upload_id}/complete")
async def complete_upload(request: web.Request) -> web.Response:
    body = await read_json(request) if request.can_read_body else {}
    check_known(body, UPLOAD_COMPLETE, "field")
    uploads = request.app[UPLOADS]
    owned = await uploads.owned(identity_of(request), request.match_info["upload_id"])
    upload = await uploads.complete(owned.id, _text(body, "sha256"))
    return web.json_response(upload_view(upload))


@routes.post("/v1/audio/jobs")
async def create_audio_job(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = await read_json(request)
    check_known(body, AUDIO_JOB, "field")
    identity = identity_of(request)
    upload = await request.app[UPLOADS].completed(identity, _text(body, "upload_id") or "")
    job_request = build_job_request(
        service.registry,
        service.config,
        model=_text(body, "model"),
        layout=parse_channel_layout(_text(body, "channel_layout")),
        labels=parse_channel_labels(_text(body, "channel_labels")),
        language=_text(body, "language"),
        task=_text(body, "task") or "transcribe",
        options=decoder_options({k: str(v) for k, v in body.items() if k in ("beam_size", "vad", "prompt")}),
        format=parse_format(_text(body, "format") or "json"),
        callback_url=_text(body, "callback_url"),
        userdata=None,
    )
    retain = parse_bool({"retain": str(body.get("retain", True)).lower()}, "retain", True)
    job_request = dataclasses.replace(
        job_request,
        x_request_id=request[REQUEST_ID_KEY],
        dialect="uploads",
        upload_id=upload.id,
        retain=retain,
        crosstalk=parse_crosstalk({"crosstalk": str(body.get("crosstalk") or "auto")}),
        speakers=parse_speakers(
            {
                name: str(value).lower()
                for name, value in body.items()
                if name in SPEAKER_FIELDS and value is not None
            }
        ),
        redaction=parse_redact_json(body),
    )
    await service.check_queue(identity)
    job = await service.accept_upload(uuid.uuid4().hex, upload, job_request, identity)
    return web.json_response(
        audio_job_view(job), status=202, headers={"Location": f"/v1/audio/jobs/{job.id}"}
    )


@routes.get("/v1/audio/jobs/{job_id}")
async def get_audio_job(request: web.Request) -> web.Response:
    message = "no audio job with this id"
    job = await request.app[SERVICE].job_for(identity_of(request), request.match_info["job_id"], message)
    if job.request.dialect != "uploads":
        raise RequestNotFound(message, param="job_id")
    answer = web.json_response(audio_job_view(job))
    if job.result is not None and job.status.finished:
        await request.app[SERVICE].forget_unless_retained(job)  # retain=false: delivered once
    return answer
