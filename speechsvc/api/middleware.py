"""X-Request-ID on every answer, the JSON error envelope for every non-2xx, one log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from speechsvc.access.auth import OPEN_PATHS, OPEN_PREFIXES, Identity
from speechsvc.api.headers import add_security_headers
from speechsvc.api.keys import AUTH, METRICS, POLL_RATE_LIMITER, RATE_LIMITER
from speechsvc.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SpeechsvcError,
    UnsupportedMediaType,
)
from speechsvc.operations.logs import log_event

log = logging.getLogger("speechsvc.access")

REQUEST_ID_KEY = web.RequestKey("request_id", str)
IDENTITY_KEY = web.RequestKey("identity", Identity)
NOBODY = Identity("", admin=False)  # a request the guard let through unidentified owns and sees nothing
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/=+-]{1,128}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


JOB_ID_PARAMS = ("request_id", "job_id")  # the path parameters that name a job
DEEPGRAM_PATHS = frozenset({"/v1/listen"})  # their errors also carry Deepgram's err_code and err_msg


def error_response(
    error: SpeechsvcError, request_id: str, job_id: str | None = None, *, deepgram: bool = False
) -> web.Response:
    """The error envelope. `request_id` is the HTTP request's X-Request-ID; on a job's endpoints the
    body also names the job (`job_id`, the `x-requestid` header of the raw dialect)."""
    body = error.to_deepgram_body(request_id) if deepgram else error.to_body(request_id)
    if job_id is not None:
        body.setdefault("job_id", job_id)
    response = web.json_response(body, status=error.status)
    if job_id is not None and _SAFE_REQUEST_ID.match(job_id):  # a path may hold anything, even CR LF
        response.headers["x-requestid"] = job_id
    retry_after = getattr(error, "retry_after_s", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="speechsvc"'
    return response


def _from_http_exception(exc: web.HTTPException) -> SpeechsvcError:
    """aiohttp's own answers (no route, wrong method, too large) in our envelope."""
    known: dict[int, type[SpeechsvcError]] = {
        404: NotFound,
        405: MethodNotAllowed,
        413: PayloadTooLarge,
        415: UnsupportedMediaType,
    }
    if exc.status in known:
        return known[exc.status]()
    return InvalidRequest(exc.reason)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-ID", "")
    request_id = given if _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
    request[REQUEST_ID_KEY] = request_id
    started = time.monotonic()
    deepgram = request.path in DEEPGRAM_PATHS
    try:
        response = await handler(request)
    except SpeechsvcError as exc:
        named = exc.extra.get("job_id")
        job_id = next(
            (request.match_info[name] for name in JOB_ID_PARAMS if name in request.match_info), None
        )
        job_id = job_id or (named if isinstance(named, str) else None)
        response = error_response(exc, request_id, job_id, deepgram=deepgram)
    except web.HTTPException as exc:
        if exc.status < 400:
            exc.headers["X-Request-ID"] = request_id
            raise
        response = error_response(_from_http_exception(exc), request_id, deepgram=deepgram)
    except Exception:
        log.exception("event=http_error x_request_id=%s unhandled error", request_id)
        response = error_response(SpeechsvcError(), request_id, deepgram=deepgram)
    response.headers["X-Request-ID"] = request_id
    add_security_headers(response)
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    request.app[METRICS].http_responses.labels(request.method, route, str(response.status)).inc()
    log_event(
        log,
        "http",
        x_request_id=request_id,
        method=request.method,
        path=request.path,
        status=response.status,
        duration_s=time.monotonic() - started,
        request_id=response.headers.get("x-requestid"),
    )
    return response


POLL_METHODS = frozenset({"GET", "HEAD"})  # counted in their own, larger budget
UPLOAD_CONTENT = re.compile(r"^/v1/audio/uploads/[^/]+/content$")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API keys on everything but the health and metrics endpoints; the per-key rate limit (a live stream's
    upgrade counts as a request, not as a poll)."""
    if (
        request.path in OPEN_PATHS
        or request.path.startswith(OPEN_PREFIXES)
        or (request.method == "PUT" and UPLOAD_CONTENT.match(request.path))
    ):
        return await handler(request)  # open, or authorised by the upload URL's own token
    identity = await request.app[AUTH].identify(request)
    request[IDENTITY_KEY] = identity
    if request.method in POLL_METHODS and request.headers.get("Upgrade", "").lower() != "websocket":
        await request.app[POLL_RATE_LIMITER].check(identity.key_id + "|poll")
    else:
        await request.app[RATE_LIMITER].check(identity.key_id)
    return await handler(request)


def identity_of(request: web.Request) -> Identity:
    """The caller the guard identified; NOBODY on the paths it leaves open."""
    identity: Identity = request.get(IDENTITY_KEY, NOBODY)
    return identity
