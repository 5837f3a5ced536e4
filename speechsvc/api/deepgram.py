"""The Deepgram dialect, pre-recorded (API.md §3a): POST /v1/listen with the audio bytes as the body, or
`{"url": …}`; synchronous, or with `callback` an answer at once and the result delivered there. Thin:
query -> job -> the same pipeline -> Deepgram's shape (speechsvc.results.deepgram)."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from aiohttp import web

from speechsvc.api.body import read_json, spool_request
from speechsvc.api.deepgram_params import (
    deepgram_language,
    deepgram_model,
    deepgram_options,
    deepgram_redaction,
    hotwords,
    refuse_unsupported,
    wants_diarization,
)
from speechsvc.api.keys import REMOTE, SERVICE
from speechsvc.api.middleware import REQUEST_ID_KEY, identity_of
from speechsvc.api.params import parse_crosstalk, parse_speakers
from speechsvc.api.spec import DEEPGRAM_LISTEN, DEEPGRAM_URL, check_known
from speechsvc.asr.engine import TranscribeOptions
from speechsvc.audio.layout import parse_channel_layout
from speechsvc.audio.media import is_accepted_media_type
from speechsvc.errors import InvalidMediaUrl, UnsupportedMediaType
from speechsvc.jobs.model import JobRequest
from speechsvc.results.formats import FormatSpec
from speechsvc.service.facade import Service, build_job_request
from speechsvc.service.spool import Spooled
from speechsvc.service.views import deepgram_result

routes = web.RouteTableDef()


def listen_request(service: Service, request: web.Request) -> JobRequest:
    """The job the query asks for; 4xx before a byte of the body is read."""
    query = request.query
    check_known(query.keys(), DEEPGRAM_LISTEN, "query parameter")
    refuse_unsupported(query)
    job_request = build_job_request(
        service.registry,
        service.config,
        model=deepgram_model(service.registry, query.get("model")),
        layout=parse_channel_layout(query.get("channel_layout")),
        labels=None,
        language=deepgram_language(query),
        task="transcribe",
        options=TranscribeOptions(hotwords=hotwords(query)),
        format=FormatSpec("json"),
        callback_url=query.get("callback") or None,
        userdata=None,
    )
    speakers = {**query, "diarize": "true" if wants_diarization(query) else "false"}
    return dataclasses.replace(
        job_request,
        x_request_id=request[REQUEST_ID_KEY],
        dialect="deepgram",
        crosstalk=parse_crosstalk(query),
        speakers=parse_speakers(speakers),
        redaction=deepgram_redaction(query),
        dialect_options=deepgram_options(query).to_json(),
    )


async def receive(request: web.Request, path: Path) -> tuple[Spooled, str]:
    """The audio into `path`: the body itself, or the file at the JSON body's url. Returns its media type."""
    service = request.app[SERVICE]
    if request.content_type == "application/json":
        body = await read_json(request)
        check_known(body, DEEPGRAM_URL, "field")
        url = body.get("url")
        if not isinstance(url, str) or not url.strip():
            raise InvalidMediaUrl('the JSON body must be {"url": "https://…"}', param="url")
        remote = request.app[REMOTE]
        remote.check(url)  # 400 before any connection is made
        return await remote.fetch(url.strip(), path)
    if not is_accepted_media_type(request.content_type):
        raise UnsupportedMediaType(f"Content-Type {request.content_type!r} is not an accepted audio type")
    spooled = await spool_request(request, path, service.config.max_upload_bytes, service.disk)
    return spooled, request.content_type


@routes.post("/v1/listen")
async def listen(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    job_request = listen_request(service, request)
    identity = identity_of(request)
    await service.check_queue(identity)  # 503/429 before the body is stored
    job_id = uuid.uuid4().hex
    spooled_path = service.config.spool_dir / f"{job_id}.upload"
    spooled, media_type = await receive(request, spooled_path)
    options = {**job_request.dialect_options, "sha256": spooled.sha256}
    job_request = dataclasses.replace(job_request, dialect_options=options)
    await service.accept(job_id, spooled_path, spooled.size, media_type, job_request, identity)
    headers = {"x-requestid": job_id, "dg-request-id": job_id}
    if job_request.callback_url is not None:
        return web.json_response({"request_id": job_id}, headers=headers)
    finished = await service.finished(job_id, "send a callback for long recordings")
    answer = deepgram_result(finished)
    await service.forget_unless_retained(finished)
    return web.json_response(answer, headers=headers)
