"""The worker: claims jobs with a lease, runs the pipeline off the event loop, stores the result,
makes the callback, and on start-up takes back whatever a previous process left unfinished."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from speechsvc.asr.models import ModelRegistry
from speechsvc.asr.scheduler import FairPool
from speechsvc.config import Config
from speechsvc.delivery.callbacks import CallbackSender
from speechsvc.delivery.webhooks import WebhookSender
from speechsvc.errors import JobCanceled, SpeechsvcError, StoreUnavailable
from speechsvc.jobs.model import JobStatus
from speechsvc.operations.logs import log_event
from speechsvc.operations.metrics import Metrics
from speechsvc.service.pipeline import run_pipeline
from speechsvc.service.uploads import Uploads
from speechsvc.service.views import webhook_event
from speechsvc.store import Job, Store, redacted_audio_id

log = logging.getLogger(__name__)

IDLE_POLL_S = 1.0
PROGRESS_INTERVAL_S = 0.5  # one machine; on a shared database about one write a second per job (below)
SHARED_PROGRESS_INTERVAL_S = 1.0
STORE_RETRY_S = 1.0  # while the database is unreachable, a finished job's result waits and is retried
STALE_CALLBACK_S = 60.0  # beyond the callback timeout: an attempt started this long ago was cut off
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
        """Make the callbacks and store the webhook events a crash left undone (on one machine, also re-queue
        the jobs it left running; on a shared database their leases do that)."""
        stale_s = self.config.callback_timeout_s + STALE_CALLBACK_S if self.store.shared else 0.0
        for job in await self.store.recover(stale_s):
            if job.request.single_callback:
                await self.callbacks.deliver_for(self.store, job)
        for job_id in await self.store.jobs_missing_delivery(stale_s):
            await self._callback(job_id)

    async def run(self) -> None:
        while True:
            try:
                job = await self.store.claim(self.config.lease_s)
            except StoreUnavailable:  # the database is down: wait for it, then go on
                await asyncio.sleep(STORE_RETRY_S)
                continue
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
        redacted = self.config.spool_dir / f"{job.id}.redacted.flac"  # redact_audio: the copy, until stored
        try:
            transcriber = await asyncio.to_thread(self.registry.get, job.request.model)
            async with self.store.local_audio(job.id, self.config.spool_dir) as audio_path:
                result = await self._run(job, audio_path, transcriber, bridge, redacted)
            if redacted.exists():  # before the result: a finished job's copy is always there
                await self.store.save_audio(redacted_audio_id(job.id), redacted)
        except asyncio.CancelledError:
            bridge.canceled.set()  # shutting down: the thread stops at its next segment; the job stays
            self._log(job, "HandedBack")  # Pending, and is queued again at the next start-up
            raise
        except StoreUnavailable as exc:
            # not the job's fault: it stays Pending, and is claimed again once its lease runs out
            self._log(job, "HandedBack", reason=exc.message)
            return
        except JobCanceled:
            self._log(job, "Canceled")
            self.metrics.jobs_finished.labels(JobStatus.CANCELED.value).inc()
            await self._drop_audio(job.id)
            return
        except SpeechsvcError as exc:
            await self._finish_failed(job, exc.message)
            return
        finally:
            redacted.unlink(missing_ok=True)
            await stop_task(ticker)
        has_callback = job.request.single_callback
        if not await self._retrying(self.store.complete, job.id, result, has_callback=has_callback):
            # the job is gone (deleted by its owner: the redacted copy saved meanwhile goes too), or another
            # worker took it over when this one's lease ran out and finished it first: then it is theirs
            if await self._retrying(self._forget_if_deleted, job.id):
                self._log(job, "Dropped", reason="deleted while running")
            else:
                self._log(job, "Dropped", reason="finished by another worker")
            return
        audio_s = sum(channel["duration_s"] for channel in result["channels"])
        elapsed_s = time.monotonic() - started
        self.metrics.audio_seconds.inc(audio_s)
        if audio_s > 0:
            self.metrics.realtime_factor.observe(elapsed_s / audio_s)
        self.metrics.jobs_finished.labels(JobStatus.COMPLETED.value).inc()
        if not self.config.keep_audio:
            await self._drop_audio(job.id)
        self._log(job, "Ready" if has_callback else "Completed", audio_s=audio_s, elapsed_s=elapsed_s)
        self._finished(job.id)
        await self._callback(job.id)

    async def _forget_if_deleted(self, job_id: str) -> bool:
        """True if the job no longer exists; then what this worker stored for it (the redacted audio) goes."""
        if await self.store.get(job_id) is not None:
            return False
        await self.store.delete_audio(redacted_audio_id(job_id))
        return True

    async def _run(
        self, job: Job, audio_path: Path, transcriber: Any, bridge: _ProgressBridge, redacted: Path
    ) -> Any:
        return await asyncio.to_thread(
            run_pipeline,
            job.id,
            audio_path,
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
            redacted_audio=redacted,
            second_listen=not self.config.redact_single_pass,
        )

    async def _finish_failed(self, job: Job, message: str) -> None:
        if await self._retrying(self.store.fail, job.id, message):
            self._log(job, "Failed", error=message)
            self.metrics.jobs_finished.labels(JobStatus.FAILED.value).inc()
            if not self.config.keep_audio:
                await self._drop_audio(job.id)
            self._finished(job.id)
            await self._callback(job.id)

    def _finished(self, job_id: str) -> None:
        """Wake whoever waits for the job: here, and (through the database) on the other nodes."""
        self.events.fire(job_id)
        asyncio.get_running_loop().create_task(self.store.notify("finished", job_id))

    async def _drop_audio(self, job_id: str) -> None:
        with contextlib.suppress(StoreUnavailable):  # retention removes it later if the database is down
            await self.store.delete_audio(job_id)

    async def _retrying(self, operation: Callable[..., Awaitable[bool]], *args: Any, **kwargs: Any) -> bool:
        """A finished job's outcome is never lost to a database outage: wait for it to come back (the
        lease may run out meanwhile; then the write finds the job taken and the outcome is dropped)."""
        while True:
            try:
                return await operation(*args, **kwargs)
            except StoreUnavailable:
                await asyncio.sleep(STORE_RETRY_S)

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
            await self.webhooks.enqueue(job.id, job.request.callback_url, *webhook_event(job))

    async def _report_progress(self, job_id: str, bridge: _ProgressBridge) -> None:
        """Write progress every interval; each write also renews the lease. A job canceled or deleted on
        any node is no longer Pending: the write says so, and the pipeline stops at its next segment."""
        interval_s = SHARED_PROGRESS_INTERVAL_S if self.store.shared else PROGRESS_INTERVAL_S
        while True:
            await asyncio.sleep(interval_s)
            try:
                still_running = await self.store.update_progress(
                    job_id, round(bridge.percent, 1), self.config.lease_s
                )
            except StoreUnavailable:
                continue  # renewed at the next write; the job goes on meanwhile
            if not still_running:
                bridge.canceled.set()
                return


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel a helper task and wait until it has stopped, without swallowing a cancellation of the task
    that waits: `with suppress(CancelledError): await task` would swallow both, and a worker cancelled at
    shutdown while its job's progress ticker stopped went on claiming jobs, its cleanup waiting forever
    (a CI run's 180 s teardown)."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def run_janitor(config: Config, store: Store, uploads: Uploads, interval_s: float) -> None:
    """Retention: delete finished jobs (rows, audio, results) older than --retention-h, and the bytes of
    uploads past their expiry, forever."""
    while True:
        try:
            for upload in await uploads.expire():
                log_event(log, "upload", upload_id=upload.id, state="expired")
            cutoff = time.time() - config.retention_h * 3600
            for job in await store.delete_finished_before(cutoff):
                log_event(
                    log, "job", request_id=job.id, status="Expired", x_request_id=job.request.x_request_id
                )
        except StoreUnavailable:
            pass  # next round
        await asyncio.sleep(interval_s)


def clean_spool(config: Config) -> None:
    """At start-up: spooled bodies and decode scratch a dead process left behind belong to no job."""
    if config.spool_dir.exists():
        for leftover in config.spool_dir.iterdir():
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
