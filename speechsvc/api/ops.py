"""Operations endpoints: /healthz, /readyz, /v1/models."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from speechsvc.api.keys import METRICS, REGISTRY, ROLE, STORE
from speechsvc.errors import StoreUnavailable, Unavailable

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    runs_jobs = request.app[ROLE] != "api"  # an API node never loads the model
    if runs_jobs and not registry.is_loaded():
        raise Unavailable(f"model {registry.default} is still loading")
    if not await request.app[STORE].writable():
        raise StoreUnavailable("the job store is not writable")
    return web.json_response(
        {"status": "ready", "role": request.app[ROLE], "model": registry.default if runs_jobs else None}
    )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    collected = request.app[METRICS]
    collected.set_job_counts(await request.app[STORE].count_by_status())
    return web.Response(body=collected.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/v1/models")
async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": request.app[REGISTRY].listing()})
