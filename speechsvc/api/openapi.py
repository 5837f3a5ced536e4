"""GET /openapi.json (OpenAPI 3.1) and GET /docs (Swagger UI from the swagger-ui-py wheel, served from
here: no CDN, works offline). The parameters come from speechsvc.api.spec, the tables the handlers
enforce; tests/unit/test_openapi.py checks that every route of the app is here and nothing else."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from speechsvc.api import spec
from speechsvc.api.headers import script_csp
from speechsvc.api.spec import Param

routes = web.RouteTableDef()

ERROR = {"$ref": "#/components/schemas/Error"}
JOB_ID = "the job's id: the `x-requestid` header (not X-Request-ID, which names one HTTP request)"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    tag: str
    query: dict[str, Param] = field(default_factory=dict)
    form: dict[str, Param] | None = None
    json: dict[str, Param] | None = None
    audio_body: bool = False
    responses: dict[str, str] = field(default_factory=dict)
    public: bool = False  # no API key


ROUTES = (
    Route("POST", "/v1/transcribe", "Submit a recording: the raw audio bytes as the body", "raw",
          query=spec.RAW_SUBMIT, audio_body=True,
          responses={"202": "accepted, stored durably, queued (x-requestid: the job)",
                     "200": "with wait=: the finished result in `format`"}),
    Route("GET", "/v1/transcribe/{request_id}", "Poll a job; its result once finished", "raw", query=spec.RAW_POLL,
          responses={"200": "finished: the result in `format` (Failed: the error text)", "204": "still working"}),
    Route("GET", "/v1/transcribe/{request_id}/audio", "The redacted copy of a job's audio (redact_audio)", "raw",
          query=spec.RAW_AUDIO, responses={"200": "the audio in `format`", "404": "no such job or no copy"}),
    Route("DELETE", "/v1/transcribe/{request_id}", "Cancel and delete a job", "raw",
          responses={"204": "deleted"}),
    Route("POST", "/v1/audio/transcriptions", "OpenAI: transcribe a file and wait for the text", "openai",
          form=spec.OPENAI_FORM, responses={"200": "the transcript in response_format"}),
    Route("POST", "/v1/audio/translations", "OpenAI: translate a file to English text", "openai",
          form=spec.OPENAI_FORM, responses={"200": "the translation in response_format"}),
    Route("POST", "/v1/transcription-jobs", "Create an asynchronous transcription job", "openai",
          query=spec.JOBS_QUERY, form=spec.JOBS_FORM, responses={"202": "the job"}),
    Route("GET", "/v1/transcription-jobs/{job_id}", "A transcription job's status", "openai",
          responses={"200": "the job"}),
    Route("GET", "/v1/transcription-jobs/{job_id}/result", "A transcription job's result", "openai",
          responses={"200": "the transcript", "409": "not finished"}),
    Route("POST", "/v1/transcription-jobs/{job_id}/cancel", "Cancel a transcription job", "openai",
          responses={"200": "the canceled job", "409": "already finished"}),
    Route("POST", "/v1/audio/uploads", "Create a resumable upload", "uploads", json=spec.UPLOAD_CREATE,
          responses={"201": "the upload, with its upload_url"}),
    Route("PUT", "/v1/audio/uploads/{upload_id}/content", "Send the bytes (whole, or a piece with Content-Range)",
          "uploads", query=spec.UPLOAD_CONTENT,
          audio_body=True, public=True, responses={"200": "the upload, with received_bytes"}),
    Route("GET", "/v1/audio/uploads/{upload_id}", "An upload's state", "uploads", responses={"200": "the upload"}),
    Route("DELETE", "/v1/audio/uploads/{upload_id}", "Delete an upload and its bytes", "uploads",
          responses={"200": "deleted"}),
    Route("POST", "/v1/audio/uploads/{upload_id}/complete", "Check and complete an upload", "uploads",
          json=spec.UPLOAD_COMPLETE, responses={"200": "the completed upload"}),
    Route("POST", "/v1/audio/jobs", "Create a job from a completed upload", "uploads", json=spec.AUDIO_JOB,
          responses={"202": "the job"}),
    Route("GET", "/v1/audio/jobs/{job_id}", "An audio job, with its result once finished", "uploads",
          responses={"200": "the job"}),
    Route("POST", "/v1/listen", "Deepgram: transcribe the audio bytes of the body, or the file at {\"url\"}",
          "deepgram", query=spec.DEEPGRAM_LISTEN, audio_body=True, json=spec.DEEPGRAM_URL,
          responses={"200": "Deepgram's answer (metadata, results); with callback: {request_id}, the answer "
                             "delivered to the callback"}),
    Route("GET", "/v1/listen", "Deepgram live: a WebSocket (Upgrade: websocket); binary audio frames, JSON KeepAlive, "
          "Finalize, CloseStream; the server sends Results, SpeechStarted, UtteranceEnd, Metadata, Error",
          "deepgram", query=spec.DEEPGRAM_LIVE,
          responses={"101": "the WebSocket", "503": "live_streams_full (retry later) or live_not_served (an "
                             "API-only node)"}),
    Route("GET", "/v1/models", "The models this server serves", "operations", responses={"200": "a list"}),
    Route("GET", "/healthz", "The process is up", "operations", public=True, responses={"200": "ok"}),
    Route("GET", "/readyz", "Model loaded and store writable", "operations", public=True,
          responses={"200": "ready", "503": "not yet"}),
    Route("GET", "/metrics", "Prometheus metrics", "operations", public=True, responses={"200": "text"}),
    Route("GET", "/openapi.json", "This document", "operations", public=True, responses={"200": "OpenAPI 3.1"}),
    Route("GET", "/docs", "An interactive page over this document", "operations", public=True,
          responses={"200": "HTML"}),
    Route("GET", "/live", "Live captions: stream the microphone or a file to GET /v1/listen, see each channel's "
          "captions as they come", "operations", public=True, responses={"200": "HTML"}),
)  # fmt: skip


def _schema(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": param.type, "description": param.description}
    if param.enum:
        schema["enum"] = list(param.enum)
    return schema


def _operation(route: Route) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    for name in (part[1:-1] for part in route.path.split("/") if part.startswith("{")):
        description = JOB_ID if name in ("request_id", "job_id") else "the upload's id"
        parameters.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"},
                           "description": description})  # fmt: skip
    for name, param in route.query.items():
        parameters.append({"name": name, "in": "query", "required": name == "token", "schema": _schema(param),
                           "description": param.description})  # fmt: skip
    parameters.append({"name": "X-Request-ID", "in": "header", "required": False, "schema": {"type": "string"},
                       "description": "names this HTTP request in logs and error bodies (echoed); not a job id"})  # fmt: skip
    operation: dict[str, Any] = {
        "summary": route.summary,
        "tags": [route.tag],
        "operationId": route.method.lower() + route.path.replace("/", "_").replace("{", "").replace("}", ""),
        "parameters": parameters,
        "responses": {
            **{status: {"description": text} for status, text in route.responses.items()},
            "default": {
                "description": "the error envelope",
                "content": {"application/json": {"schema": ERROR}},
            },
        },
    }
    if route.public:
        operation["security"] = []
    if route.audio_body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                        "audio/*": {"schema": {"type": "string", "format": "binary"}},
                        "video/*": {"schema": {"type": "string", "format": "binary"}}},
        }  # fmt: skip
    if route.form is not None:
        properties = {name: _schema(param) for name, param in route.form.items()}
        properties["file"] = {"type": "string", "format": "binary", "description": "the audio file"}
        operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": ["file"], "properties": properties}}}}  # fmt: skip
    if route.json is not None:
        properties = {name: _schema(param) for name, param in route.json.items()}
        body = operation.setdefault("requestBody", {"required": True, "content": {}})  # beside audio, if any
        body["content"]["application/json"] = {
            "schema": {"type": "object", "additionalProperties": False, "properties": properties}}  # fmt: skip
    return operation


def openapi_document(server_url: str = "/") -> dict[str, Any]:
    """The API as OpenAPI 3.1, built from ROUTES and the parameter tables the handlers enforce."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
        if route.method == "GET" and route.path == "/v1/transcribe/{request_id}":
            head = _operation(route)
            head["operationId"] = "head" + head["operationId"][3:]
            head["summary"] = "Poll a job: the same headers (x-status, x-progress), no body"
            paths[route.path]["head"] = head
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "speechsvc",
            "version": "1",
            "description": "Self-hosted speech-to-text for telephony recordings. Every non-2xx answer "
            "is the JSON error envelope. Two ids never to confuse: `x-requestid` (header) "
            "and `job_id` (error bodies) name a job; `X-Request-ID` and the error body's "
            "`request_id` name one HTTP request.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"token": []}, {"xToken": []}, {"xApiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer ssk_…"},
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "Authorization: Token ssk_… (Deepgram's scheme)",
                },
                "xToken": {"type": "apiKey", "in": "header", "name": "x-token"},
                "xApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "request_id"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "type", "code"],
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string"},
                                "code": {"type": "string"},
                                "param": {"type": ["string", "null"]},
                            },
                        },
                        "request_id": {"type": "string", "description": "this HTTP request's X-Request-ID"},
                        "job_id": {"type": "string", "description": "on a job's endpoints: the job"},
                    },
                }
            },
        },
    }


def _swagger_static() -> Path:
    """The static files of the swagger-ui-py wheel (Swagger UI 5, which reads OpenAPI 3.1), found without
    importing the package (its Python side is for other frameworks)."""
    found = importlib.util.find_spec("swagger_ui")
    if found is None or not found.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(next(iter(found.submodule_search_locations))) / "static"


DOCS_SCRIPT = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});'
DOCS_PAGE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>speechsvc API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>{DOCS_SCRIPT}</script>
</body></html>"""


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    # a relative server: the document never repeats the request's Host header back (issue 25)
    return web.json_response(openapi_document("/"))


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    return web.Response(
        text=DOCS_PAGE, content_type="text/html", headers={"Content-Security-Policy": script_csp(DOCS_SCRIPT)}
    )


STATIC_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js"})


@routes.get("/docs/static/{name}")
async def docs_static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES:  # two known files, never a path into the file system
        raise web.HTTPNotFound()
    return web.FileResponse(_swagger_static() / name)
