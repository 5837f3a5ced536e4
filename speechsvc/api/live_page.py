"""GET /live: a page that streams the microphone (or a file) to the live WebSocket and shows each channel's
captions as they come (interim results grey, finals black). The page, its script and the AudioWorklet that
turns the microphone into linear16 are files of this package (speechsvc/api/static/): no CDN, no build step.

Why an AudioWorklet and raw linear16 rather than MediaRecorder's WebM/Opus: the samples go out every 100 ms
as they are captured (MediaRecorder hands over whole Opus pages or clusters, and PyAV must first probe the
container), at a rate the page knows (the AudioContext's), with a file's channels kept apart."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from speechsvc.api.headers import script_csp

routes = web.RouteTableDef()

STATIC = Path(__file__).parent / "static"
PAGE = (STATIC / "live.html").read_text()
SCRIPTS = {name: (STATIC / name).read_text() for name in ("live.js", "capture.js")}  # a few KiB, read once
PAGE_CSP = script_csp()  # its scripts are files from this origin; connect-src 'self' takes ws:// and wss://


@routes.get("/live")
async def live_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", headers={"Content-Security-Policy": PAGE_CSP})


@routes.get("/live/static/{name}")
async def live_static(request: web.Request) -> web.Response:
    script = SCRIPTS.get(request.match_info["name"])  # known files only, never a path into the file system
    if script is None:
        raise web.HTTPNotFound()
    return web.Response(text=script, content_type="text/javascript")
