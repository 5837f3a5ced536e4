"""The worker: claims jobs with a lease, runs the pipeline off the event loop, stores the result,
makes the callback, and on start-up takes back whatever a previous process left unfinished."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
from typing import Any

from speechsvc.asr.models import ModelRegistry
from speechsvc.asr.scheduler import FairPool
from speechsvc.callbacks import CallbackSender
from speechsvc.config import Config
from speechsvc.errors import JobCanceled, SpeechsvcError
from speechsvc.jobs.model import JobStatus
from speechsvc.jobs.pipeline import run_pipeline
from speechsvc.jobs.store import Job, Store
from speechsvc.logs import log_event
from speechsvc.metrics import Metrics
from speechsvc.results.views import event_for
from speechsvc.uploads import Uploads
from speechsvc.webhooks import WebhookSender

log = logging.getLogger(__name__)

LEASE_S = 60.0
IDLE_POLL_S = 1.0
PROGRESS_INTERVAL_S = 0.5
MAX_ATTEMPTS = 3  # a job that took down its worker this often is failed, not retried forever


class JobEvents:
    """In-process notice of a job reaching Ready/Completed/Failed, for `wait=`."""

    def __init__(self) -> None:
        self._events: dict[str, list[asyncio.Event]] = {}

    def watch(self, job_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._events.setdefault(job_id, []).append(event)
        return event

    def forget(self, job_id: str, event: asyncio.Event) -> None:
        waiting = self._events.get(job_id, [])
        if event in waiting:
            waiting.remove(event)
        if not waiting:
            self._events.pop(job_id, None)

    def fire(self, job_id: str) -> None:
        for event in self._events.pop(job_id, []):
            event.set()


class _ProgressBridge:
    """Carries progress from the pipeline thread to the event loop, and a cancel the other way."""

    def __init__(self) -> None:
        self.percent = 0.0
        self.canceled = threading.Event()

    def __call__(self, percent: float) -> None:
        if self.canceled.is_set():
            raise JobCanceled()
        self.percent = max(self.percent, min(percent, 100.0))


class Worker:
    def __init__(
        self,
        config: Config,
        store: Store,
        registry: ModelRegistry,
        callbacks: CallbackSender,
        events: JobEvents,
        metrics: Metrics,
        webhooks: WebhookSender,
        pool: FairPool,
    ) -> None:
        self.config = config
        self.store = store
        self.registry = registry
        self.callbacks = callbacks
        self.events = events
        self.metrics = metrics
        self.webhooks = webhooks
        self.pool = pool
        self.wake = asyncio.Event()

    def notify(self) -> None:
        self.wake.set()

    async def recover(self) -> None:
        """Re-queue interrupted jobs; make the callbacks and store the webhook events a crash left undone."""
        for job in await self.store.recover():
            if job.request.single_callback:
                await self.callbacks.deliver_for(self.store, job)
        for job_id in await self.webhooks.store.jobs_missing_delivery():
            await self._callback(job_id)

    async def run(self) -> None:
        while True:
            job = await self.store.claim(LEASE_S)
            if job is None:
                self.wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), IDLE_POLL_S)
                continue
            try:
                await self.process(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one job take the worker down
                log.exception("event=job_error request_id=%s unexpected error in the worker", job.id)
                await self._finish_failed(job, "internal error while processing the job")

    def _log(self, job: Job, status: str, **fields: Any) -> None:
        log_event(
            log, "job", request_id=job.id, status=status, x_request_id=job.request.x_request_id, **fields
        )

    async def process(self, job: Job) -> None:
        self._log(job, "Pending", attempt=job.attempts)
        if job.attempts > MAX_ATTEMPTS:
            await self._finish_failed(job, f"the job stopped its worker {MAX_ATTEMPTS} times; giving up")
            return
        bridge = _ProgressBridge()
        ticker = asyncio.create_task(self._report_progress(job.id, bridge))
        started = time.monotonic()
        try:
            transcriber = await asyncio.to_thread(self.registry.get, job.request.model)
            result = await asyncio.to_thread(
                run_pipeline,
                job.id,
                job.audio_path,
                job.media_type,
                job.request,
                transcriber,
                max_duration_s=self.config.max_duration_s,
                max_channels=self.config.max_channels,
                limits=self.config.decode_limits,
                max_decoded_bytes=self.config.max_decoded_bytes,
                scratch_dir=self.config.spool_dir / f"{job.id}.decoded",
                on_progress=bridge,
                pool=self.pool,
            )
        except asyncio.CancelledError:
            bridge.canceled.set()  # shutting down: the thread stops at its next segment; the job stays
            self._log(job, "HandedBack")  # Pending, and is queued again at the next start-up
            raise
        except JobCanceled:
            self._log(job, "Canceled")
            self.metrics.jobs_finished.labels(JobStatus.CANCELED.value).inc()
            job.audio_path.unlink(missing_ok=True)
            return
        except SpeechsvcError as exc:
            await self._finish_failed(job, exc.message)
            return
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        has_callback = job.request.single_callback
        if not await self.store.complete(job.id, result, has_callback=has_callback):
            self._log(job, "Dropped", reason="deleted while running")
            return
        audio_s = sum(channel["duration_s"] for channel in result["channels"])
        elapsed_s = time.monotonic() - started
        self.metrics.audio_seconds.inc(audio_s)
        if audio_s > 0:
            self.metrics.realtime_factor.observe(elapsed_s / audio_s)
        self.metrics.jobs_finished.labels(JobStatus.COMPLETED.value).inc()
        if not self.config.keep_audio:
            job.audio_path.unlink(missing_ok=True)
        self._log(job, "Ready" if has_callback else "Completed", audio_s=audio_s, elapsed_s=elapsed_s)
        self.events.fire(job.id)
        await self._callback(job.id)

    async def _finish_failed(self, job: Job, message: str) -> None:
        if await self.store.fail(job.id, message):
            self._log(job, "Failed", error=message)
            self.metrics.jobs_finished.labels(JobStatus.FAILED.value).inc()
            if not self.config.keep_audio:
                job.audio_path.unlink(missing_ok=True)
            self.events.fire(job.id)
            await self._callback(job.id)

    async def _callback(self, job_id: str) -> None:
        """The raw dialect's single attempt, or a job dialect's webhook event; nothing without a URL."""
        job = await self.store.get(job_id)
        if job is None or job.request.callback_url is None:
            return
        if job.request.single_callback:
            await self.callbacks.deliver_for(self.store, job)
            self.events.fire(job_id)
            if job.status == JobStatus.READY:
                self._log(job, "Completed")
        else:
            await self.webhooks.enqueue(job.id, job.request.callback_url, *event_for(job))

    async def _report_progress(self, job_id: str, bridge: _ProgressBridge) -> None:
        """Write progress every PROGRESS_INTERVAL_S; each write also renews the lease."""
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            if not await self.store.update_progress(job_id, round(bridge.percent, 1), LEASE_S):
                bridge.canceled.set()  # deleted (DELETE) while running: stop at the next segment
                return


async def run_janitor(config: Config, store: Store, uploads: Uploads, interval_s: float) -> None:
    """Retention: delete finished jobs (rows, audio, results) older than --retention-h, and the bytes of
    uploads past their expiry, forever."""
    while True:
        for upload in await uploads.expire():
            log_event(log, "upload", upload_id=upload.id, state="expired")
        cutoff = time.time() - config.retention_h * 3600
        for job in await store.delete_finished_before(cutoff):
            job.audio_path.unlink(missing_ok=True)
            log_event(log, "job", request_id=job.id, status="Expired", x_request_id=job.request.x_request_id)
        await asyncio.sleep(interval_s)


def clean_spool(config: Config) -> None:
    """At start-up: spooled bodies and decode scratch a dead process left behind belong to no job."""
    if config.spool_dir.exists():
        for leftover in config.spool_dir.iterdir():
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
