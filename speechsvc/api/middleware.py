"""X-Request-ID on every answer, the JSON error envelope for every non-2xx, one log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from speechsvc.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SpeechsvcError,
    UnsupportedMediaType,
)

log = logging.getLogger("speechsvc.access")

REQUEST_ID_KEY = web.RequestKey("request_id", str)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/=+-]{1,128}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: SpeechsvcError, request_id: str) -> web.Response:
    response = web.json_response(error.to_body(request_id), status=error.status)
    if error.status in (429, 503):
        response.headers["Retry-After"] = "5"
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
    try:
        response = await handler(request)
    except SpeechsvcError as exc:
        response = error_response(exc, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            exc.headers["X-Request-ID"] = request_id
            raise
        response = error_response(_from_http_exception(exc), request_id)
    except Exception:
        log.exception("request_id=%s unhandled error", request_id)
        response = error_response(SpeechsvcError(), request_id)
    response.headers["X-Request-ID"] = request_id
    log.info(
        "request_id=%s %s %s -> %d in %.3fs",
        request_id,
        request.method,
        request.path,
        response.status,
        time.monotonic() - started,
    )
    return response
