"""The Deepgram dialect, live (issue 21): GET /v1/listen upgraded to a WebSocket. Binary frames are audio;
text frames are KeepAlive, Finalize and CloseStream; the server sends Results, SpeechStarted, UtteranceEnd,
Metadata, and an Error before it closes for a reason. Every 4xx comes before the upgrade."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from speechsvc.api.deepgram_params import deepgram_options
from speechsvc.api.keys import CONFIG, LIVE, METRICS, REGISTRY, ROLE, SERVICE
from speechsvc.api.live_params import live_options, saved_call
from speechsvc.api.middleware import REQUEST_ID_KEY, identity_of
from speechsvc.errors import InvalidRequest, LiveIdle, LiveNotServed, LiveStreamError
from speechsvc.jobs.model import JobRequest
from speechsvc.live.recording import CallRecorder
from speechsvc.live.session import LiveSession
from speechsvc.results.deepgram_live import LiveShape, error_message

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

SUBPROTOCOLS = ("token", "bearer")  # Sec-WebSocket-Protocol: token, <key> (browsers cannot set headers)
MAX_FRAME_BYTES = 4 * 1024 * 1024
CLOSE_NORMAL, CLOSE_GOING_AWAY = 1000, 1001


@routes.get("/v1/listen")
async def listen_live(request: web.Request) -> web.StreamResponse:
    if request.app[ROLE] == "api":
        raise LiveNotServed()
    query = request.query
    registry = request.app[REGISTRY]
    options, model = live_options(registry, query)
    saving = saved_call(registry, request.app[CONFIG], query, request[REQUEST_ID_KEY])
    hub = request.app[LIVE]
    hub.check_room()  # 503 now rather than after the upgrade
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise InvalidRequest("GET /v1/listen is the live WebSocket (Upgrade: websocket); POST sends a file")
    request_id = uuid.uuid4().hex
    dg = deepgram_options(query)
    shape = LiveShape(request_id, model, options.channels if options.multichannel else 1, dg.punctuate,
                      dg.profanity_filter, dg.replace, diarize=options.diarize)  # fmt: skip
    ws = web.WebSocketResponse(protocols=SUBPROTOCOLS, max_msg_size=MAX_FRAME_BYTES, autoping=True)
    ws.headers["dg-request-id"] = request_id
    await ws.prepare(request)
    config = request.app[CONFIG]
    recorder = CallRecorder(config.spool_dir / f"{request_id}.live.wav") if saving is not None else None

    async def send(message: dict[str, Any]) -> None:
        if not ws.closed:
            await ws.send_json(message)

    engine = await asyncio.to_thread(registry.get, model)
    session = LiveSession(options, shape, engine, hub.executor, send, buffer_s=config.live_buffer_s,
                          metrics=request.app[METRICS], recorder=recorder)  # fmt: skip

    async def stop() -> None:  # shutdown: the last finals, then 1001
        await session.finish()
        await ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down")

    metrics = request.app[METRICS]
    with hub.stream(stop):
        metrics.live_streams.inc()
        try:
            await _serve(ws, session, config.live_idle_timeout_s)
        finally:
            metrics.live_streams.dec()
            session.abort()
    if recorder is not None and saving is not None:
        await _save(request, request_id, recorder, saving)
    return ws


async def _serve(ws: web.WebSocketResponse, session: LiveSession, idle_s: float) -> None:
    failed = asyncio.create_task(session.failed.wait())
    try:
        while not ws.closed:
            receiving = asyncio.create_task(ws.receive(timeout=idle_s))
            await asyncio.wait({receiving, failed}, return_when=asyncio.FIRST_COMPLETED)
            if failed.done():
                receiving.cancel()
                assert session.failure is not None
                return await _close_for(ws, session, session.failure)
            try:
                message = receiving.result()
            except asyncio.TimeoutError:
                return await _close_for(ws, session, LiveIdle(f"no audio and no KeepAlive for {idle_s:g} s"))
            if message.type == WSMsgType.BINARY:
                await session.audio(message.data)
            elif message.type == WSMsgType.TEXT:
                if await _control(ws, session, message.data):
                    return
            else:  # the client went away, or the server closes the socket (shutdown, after the last finals)
                return
    finally:
        failed.cancel()


async def _control(ws: web.WebSocketResponse, session: LiveSession, text: str) -> bool:
    """A text message; True when the stream is over."""
    try:
        kind = json.loads(text).get("type")
    except (ValueError, AttributeError):
        kind = None
    if kind == "KeepAlive":
        return False
    if kind == "Finalize":
        await session.finalize()
        return False
    if kind == "CloseStream":
        await session.finish()
        await ws.close(code=CLOSE_NORMAL)
        return True
    await ws.send_json(error_message("invalid_message", f"unknown message {text[:200]!r}: send KeepAlive, "
                                     "Finalize or CloseStream as JSON, audio as binary frames"))  # fmt: skip
    return False


async def _close_for(ws: web.WebSocketResponse, session: LiveSession, error: LiveStreamError) -> None:
    """An Error message and a close with its code and reason; the finals decoded so far go first."""
    log.info(
        "event=live_closed request_id=%s code=%s reason=%s",
        session.shape.request_id,
        error.code,
        error.message,
    )
    await session.drain()
    session.abort()
    with contextlib.suppress(Exception):
        await ws.send_json(error_message(error.code, error.message))
    await ws.close(code=error.close_code, message=error.code.encode()[:120])


async def _save(request: web.Request, request_id: str, recorder: CallRecorder, job: JobRequest) -> None:
    size = await asyncio.to_thread(recorder.close)
    if not size:
        return
    service = request.app[SERVICE]
    try:
        await service.accept(request_id, recorder.path, size, "audio/wav", job, identity_of(request))
    except Exception:
        log.exception("event=live_save_failed request_id=%s", request_id)
