"""The application factory: every resource with a lifetime is a cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver

from speechsvc.access.auth import Authenticator, RateLimiter, is_loopback
from speechsvc.api import deepgram, live, live_page, openai, openapi, ops, raw, uploads
from speechsvc.api.keys import (
    AUTH,
    CONFIG,
    LIVE,
    METRICS,
    POLL_RATE_LIMITER,
    RATE_LIMITER,
    REGISTRY,
    REMOTE,
    ROLE,
    SERVICE,
    STORE,
    UPLOADS,
)
from speechsvc.api.middleware import guard, request_context
from speechsvc.asr.models import ModelRegistry, pick_compute_type, pick_device, whisper_loader
from speechsvc.asr.scheduler import EnginePlan, FairPool, plan_engine
from speechsvc.audio import isolate
from speechsvc.config import Config
from speechsvc.delivery.address_policy import PolicyResolver
from speechsvc.delivery.callbacks import CallbackSender
from speechsvc.delivery.webhooks import WebhookSender
from speechsvc.errors import StoreUnavailable
from speechsvc.live.hub import LiveHub
from speechsvc.operations.disk import DiskGuard
from speechsvc.operations.metrics import Metrics
from speechsvc.service.facade import Service
from speechsvc.service.remote import RemoteMedia
from speechsvc.service.uploads import Uploads
from speechsvc.service.worker import JobEvents, Worker, clean_spool, run_janitor
from speechsvc.store import open_store

CLIENT_MAX_SIZE = 1024**2  # for small JSON bodies; audio bodies are streamed, not bounded by this
JANITOR_MAX_INTERVAL_S = 300.0
JANITOR_MIN_INTERVAL_S = 1.0
RECOVERY_INTERVAL_S = 30.0
ROLES = ("all", "api", "worker")
FETCH_HEADERS = {"User-Agent": "speechsvc"}


def engine_plan(config: Config) -> EnginePlan:
    return plan_engine(
        pick_device(config.device),
        config.workers,
        config.cpu_threads,
        config.batch_size,
        config.device_indexes,
    )


def build_registry(config: Config, metrics: Metrics | None = None) -> ModelRegistry:
    """The real registry: faster-whisper models on the configured device; ValueError (one line) for a
    compute type the device cannot run. With `metrics`, the lockstep decoder counts its batches there."""
    plan = engine_plan(config)
    compute_type = pick_compute_type(config.compute_type, plan.device, plan.device_index)
    loader = whisper_loader(
        plan.device,
        compute_type,
        plan.threads,
        num_workers=plan.slots,
        batch_size=plan.batch_size,
        device_index=plan.device_index,
        on_batch=metrics.lockstep_batch if metrics is not None else None,
        prepare_slots=plan.prepare_slots,
    )
    return ModelRegistry(config.model, config.model_cache_dir, loader)


def create_app(
    config: Config,
    *,
    registry: ModelRegistry | None = None,
    resolver: AbstractResolver | None = None,
    role: str = "all",
) -> web.Application:
    """Build the app. `registry` (a fake transcriber in fast tests) and `resolver` (callback address tests)
    are the seams; when given, the caller owns them.

    `role`: "all" (API and worker, one machine), "api" (accept, answer; never loads the model), or
    "worker" (claims and runs jobs, makes callbacks and webhook deliveries; only the ops endpoints)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    app = web.Application(middlewares=[request_context, guard], client_max_size=CLIENT_MAX_SIZE)
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app[ROLE] = role
    owns_registry = registry is None
    app[REGISTRY] = registry if registry is not None else build_registry(config, app[METRICS])
    runs_jobs = role in ("all", "worker")

    async def models(app: web.Application) -> AsyncIterator[None]:
        if runs_jobs:
            await asyncio.to_thread(app[REGISTRY].get)  # the default model loads once, at start-up
        await asyncio.to_thread(isolate.ensure_started)  # the decoder forkserver, before the first request
        yield
        if owns_registry:
            app[REGISTRY].close()

    async def jobs(app: web.Application) -> AsyncIterator[None]:
        clean_spool(config)
        for folder in (config.spool_dir, config.audio_dir, config.upload_dir):
            folder.mkdir(parents=True, exist_ok=True)
        connector = aiohttp.TCPConnector(
            resolver=PolicyResolver(resolver or ThreadedResolver(), deny_private=config.callback_deny_private)
        )
        fetch_connector = aiohttp.TCPConnector(  # the Deepgram dialect's {"url"}: private only if allowed
            resolver=PolicyResolver(
                resolver or ThreadedResolver(), deny_private=not config.fetch_allow_private
            )
        )
        async with (
            open_store(config) as store,
            aiohttp.ClientSession(connector=connector) as session,
            aiohttp.ClientSession(connector=fetch_connector, headers=FETCH_HEADERS) as fetch_session,
        ):
            callbacks = CallbackSender(
                session,
                timeout_s=config.callback_timeout_s,
                deny_private=config.callback_deny_private,
                secret=config.webhook_secret,
                metrics=app[METRICS],
            )
            events = JobEvents()
            webhooks = WebhookSender(
                store,
                callbacks,
                retry_base_s=config.webhook_retry_base_s,
                timeout_s=config.callback_timeout_s,
            )
            plan = engine_plan(config)
            pool = FairPool(plan.runners)  # the sequential decoder's slots (the batched one has its runners)
            # a bounded number of jobs decoded ahead of the engine (EnginePlan.job_workers): memory stays
            # flat under a burst, the queue itself stays on disk
            workers = [
                Worker(config, store, app[REGISTRY], callbacks, events, app[METRICS], webhooks, pool)
                for _ in range(plan.job_workers if runs_jobs else 0)
            ]

            def wake() -> None:
                for worker in workers:
                    worker.notify()

            def wake_from_database(event: str, job_id: str) -> None:  # another node's NOTIFY
                if event == "enqueued":
                    wake()
                elif event == "finished":
                    events.fire(job_id)

            disk = DiskGuard(
                config.data_dir,
                (config.spool_dir, config.upload_dir, config.audio_dir),
                config.max_disk_bytes,
                stored=store.stored_bytes if store.shared else None,  # bytes in the shared database
            )
            app[STORE] = store
            app[AUTH] = Authenticator(store, enabled=not config.no_auth, loopback=is_loopback(config.host))
            app[RATE_LIMITER] = RateLimiter(store, config.rate_limit_rpm)
            app[POLL_RATE_LIMITER] = RateLimiter(store, config.poll_budget_rpm)
            app[SERVICE] = Service(config, store, app[REGISTRY], events, wake, webhooks, disk)
            app[UPLOADS] = Uploads(config, store, disk)
            app[REMOTE] = RemoteMedia(
                fetch_session,
                allow_private=config.fetch_allow_private,
                timeout_s=config.fetch_timeout_s,
                max_bytes=config.max_upload_bytes,
                disk=disk,
            )
            tasks = []
            if workers:
                await workers[0].recover()
                tasks += [asyncio.create_task(w.run(), name=f"worker-{i}") for i, w in enumerate(workers)]
                tasks.append(asyncio.create_task(webhooks.run(), name="webhooks"))
                if store.shared:  # a node that died mid-callback is noticed by the others
                    tasks.append(asyncio.create_task(_keep_recovering(workers[0]), name="recovery"))
            horizon_h = min(config.retention_h, config.upload_expiry_h)
            interval_s = min(JANITOR_MAX_INTERVAL_S, max(JANITOR_MIN_INTERVAL_S, horizon_h * 360))
            tasks.append(
                asyncio.create_task(run_janitor(config, store, app[UPLOADS], interval_s), name="janitor")
            )
            tasks.append(asyncio.create_task(store.listen(wake_from_database), name="listen"))
            yield
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            pool.close()

    app[LIVE] = LiveHub(config.max_live_streams)

    async def live_streams(app: web.Application) -> None:  # SIGTERM: the last finals, then 1001
        await app[LIVE].shutdown()

    async def live_threads(app: web.Application) -> None:
        app[LIVE].close()

    app.cleanup_ctx.append(models)
    app.cleanup_ctx.append(jobs)
    app.on_shutdown.append(live_streams)
    app.on_cleanup.append(live_threads)
    if role != "worker":
        app.add_routes(raw.routes)
        app.add_routes(openai.routes)
        app.add_routes(uploads.routes)
        app.add_routes(deepgram.routes)
        app.add_routes(live.routes)
        app.add_routes(live_page.routes)
    app.add_routes(ops.routes)
    if role != "worker":
        app.add_routes(openapi.routes)
    return app


async def _keep_recovering(worker: Worker) -> None:
    while True:
        await asyncio.sleep(RECOVERY_INTERVAL_S)
        with contextlib.suppress(StoreUnavailable):
            await worker.recover()
