"""The one service every dialect talks to: validate a job request, accept a job, look it up, wait."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from speechsvc.access.auth import Identity
from speechsvc.asr.engine import TranscribeOptions
from speechsvc.asr.models import ModelRegistry
from speechsvc.audio.layout import ChannelRef
from speechsvc.config import Config
from speechsvc.delivery.address_policy import validate_callback_url
from speechsvc.delivery.webhooks import WebhookSender
from speechsvc.errors import (
    InvalidChannelLayout,
    InvalidRequest,
    KeyQueueFull,
    QueueFull,
    RequestNotFound,
    Timeout,
    TranscriptionFailed,
    UnsupportedLanguage,
)
from speechsvc.jobs.model import JobRequest, JobStatus
from speechsvc.operations.disk import DiskGuard
from speechsvc.redact.audio import check_format, transcode
from speechsvc.results.formats import FormatSpec
from speechsvc.service.pipeline import select_channels
from speechsvc.service.views import webhook_event
from speechsvc.service.worker import JobEvents
from speechsvc.store import Job, Store, Upload, redacted_audio_id

WAIT_POLL_S = 2.0
MAX_USERDATA_BYTES = 4096
MAX_PROMPT_CHARS = 2000


def _language_codes() -> frozenset[str]:
    # faster-whisper keeps Whisper's language list in this module-level tuple.
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def build_job_request(
    registry: ModelRegistry,
    config: Config,
    *,
    model: str | None,
    layout: tuple[ChannelRef, ...] | None,
    labels: tuple[str, ...] | None,
    language: str | None,
    task: str,
    options: TranscribeOptions,
    format: FormatSpec,
    callback_url: str | None,
    userdata: str | None,
) -> JobRequest:
    """A job request checked against the model and the policies; 4xx on anything wrong.

    Shared by every dialect and the offline CLI."""
    spec = registry.spec_for_request(model)  # 404 model_not_found
    multilingual = spec.multilingual
    if task not in ("transcribe", "translate"):
        raise InvalidRequest("task must be transcribe or translate", param="task")
    if task == "translate" and multilingual is False:
        raise InvalidRequest(f"model {spec.name} is English-only and cannot translate", param="task")
    lang = (language or "").strip().lower() or None
    if lang == "auto":
        lang = None
    if lang is not None and lang not in _language_codes():
        raise UnsupportedLanguage(f"unknown language code {lang!r}", param="language")
    if multilingual is False:
        if lang not in (None, "en"):
            raise UnsupportedLanguage(f"model {spec.name} is English-only", param="language")
        lang = "en"
    if layout is not None and len(layout) > config.max_channels:
        raise InvalidChannelLayout(
            f"channel_layout selects {len(layout)} channels; at most {config.max_channels} are accepted",
            param="channel_layout",
        )
    if layout is not None and labels is not None and len(labels) != len(layout):
        raise InvalidRequest(
            f"channel_labels names {len(labels)} channel(s) but channel_layout selects {len(layout)}",
            param="channel_labels",
        )
    for text, name in ((options.prompt, "prompt"), (options.hotwords, "hotwords")):
        if text is not None and len(text) > MAX_PROMPT_CHARS:
            raise InvalidRequest(f"{name} is longer than {MAX_PROMPT_CHARS} characters", param=name)
    if callback_url is not None:
        validate_callback_url(callback_url, deny_private=config.callback_deny_private)
    if userdata is not None:
        if len(userdata.encode()) > MAX_USERDATA_BYTES:
            raise InvalidRequest("userdata is longer than 4 KiB", param="userdata")
        if not userdata.isprintable() or not userdata.isascii():
            raise InvalidRequest(
                "userdata must be printable ASCII (it is sent as a header)", param="userdata"
            )
    options = dataclasses.replace(options, language=lang, task=task)
    return JobRequest(spec.name, layout, labels, options, format, callback_url, userdata)


class Service:
    def __init__(
        self,
        config: Config,
        store: Store,
        registry: ModelRegistry,
        events: JobEvents,
        wake: Callable[[], None],
        webhooks: WebhookSender,
        disk: DiskGuard | None = None,
    ) -> None:
        self.config = config
        self.disk = disk
        self.store = store
        self.registry = registry
        self.events = events
        self.wake = wake
        self.webhooks = webhooks

    async def check_audio(self, path: Path, media_type: str, request: JobRequest) -> None:
        """Probe the audio and resolve the request's layout against it: 4xx now, not later."""
        await asyncio.to_thread(
            select_channels,
            path,
            media_type,
            request,
            max_channels=self.config.max_channels,
            max_duration_s=self.config.max_duration_s,
            limits=self.config.decode_limits,
            max_decoded_bytes=self.config.max_decoded_bytes,
        )

    async def accept(
        self, job_id: str, spooled: Path, size: int, media_type: str, request: JobRequest, owner: Identity
    ) -> Job:
        """Probe the spooled audio, store it durably and queue the job as `owner`'s."""
        try:
            await self.check_audio(spooled, media_type, request)
            await self.store.save_audio(job_id, spooled)
            return await self._queue(job_id, size, media_type, request, owner)
        except BaseException:
            spooled.unlink(missing_ok=True)
            raise

    async def accept_upload(self, job_id: str, upload: Upload, request: JobRequest, owner: Identity) -> Job:
        """A job over a completed upload's bytes (which the job copies or links: it keeps them when the
        upload expires)."""
        async with self.store.local_upload(upload.id, self.config.spool_dir) as path:
            await self.check_audio(path, upload.mime_type, request)
        await self.store.audio_from_upload(job_id, upload.id)
        job = await self._queue(job_id, upload.size_bytes, upload.mime_type, request, owner)
        if not request.retain:  # zero retention: the job has its own copy, the upload's go now
            await self.store.upload_delete(upload.id)
        return job

    async def _queue(
        self, job_id: str, size: int, media_type: str, request: JobRequest, owner: Identity
    ) -> Job:
        try:
            await self.store.insert(job_id, media_type, size, request, owner=owner.key_id)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.store.delete_audio(job_id)
            raise
        self.wake()
        await self.store.notify("enqueued", job_id)
        job = await self.store.get(job_id)
        assert job is not None
        return job

    async def cancel(self, job_id: str) -> Job | None:
        """Queued or running -> Canceled; its audio is deleted and its webhook event stored. None if the
        job is already finished."""
        job = await self.store.cancel(job_id)
        if job is None:
            return None
        await self.store.delete_audio(job_id)
        self.events.fire(job_id)
        await self.store.notify("finished", job_id)
        if job.request.callback_url is not None and not job.request.single_callback:
            await self.webhooks.enqueue(job.id, job.request.callback_url, *webhook_event(job))
        return job

    async def forget_unless_retained(self, job: Job) -> None:
        """Zero retention (retain=false, or seed 001's enable_logging=false): once the result has been
        delivered, the job, its result and its audio are deleted."""
        if not job.request.retain:
            await self.store.delete(job.id)
            await self.store.delete_audio(job.id)

    async def redacted_audio(self, job: Job, format_name: str) -> tuple[bytes, str]:
        """The redacted copy of a finished job's audio in `format_name` (wav, flac, mp3, opus), and its
        content type; 404 when the job kept none (no redact_audio, not finished, or deleted)."""
        redaction = job.request.redaction
        channels = len(job.result["channels"]) if job.result is not None else 0
        check_format(format_name, channels)
        if (
            redaction is None
            or redaction.audio is None
            or job.status not in (JobStatus.READY, JobStatus.COMPLETED)
        ):
            raise RequestNotFound("this job has no redacted audio (redact_audio=true)", param="request_id")
        async with self.store.local_audio(redacted_audio_id(job.id), self.config.spool_dir) as path:
            found = await asyncio.to_thread(lambda: path.exists() and path.stat().st_size > 0)
            if not found:
                raise RequestNotFound("the job's redacted audio is gone", param="request_id")
            return await asyncio.to_thread(transcode, path, format_name)

    async def job_for(self, identity: Identity, job_id: str, message: str | None = None) -> Job:
        """The job, if it exists and `identity` may see it; else 404 (never 403: another key's job is
        indistinguishable from a job that does not exist)."""
        job = await self.store.get(job_id)
        if job is None or not identity.owns(job.owner):
            raise RequestNotFound(message, param="request_id" if message is None else "job_id")
        return job

    async def check_queue(self, identity: Identity) -> None:
        """503 queue_full when --max-queue jobs are already waiting; 429 key_queue_full when this key has
        its --max-queue-per-key share waiting (one tenant cannot fill the queue for the rest)."""
        if await self.store.count_status(JobStatus.QUEUED) >= self.config.max_queue:
            raise QueueFull(f"{self.config.max_queue} jobs are already waiting; retry later")
        share = self.config.max_queue_per_key
        if share and await self.store.count_status(JobStatus.QUEUED, owner=identity.key_id) >= share:
            raise KeyQueueFull(f"this key already has {share} jobs waiting; retry when some have run")

    async def finished(self, job_id: str, hint: str) -> Job:
        """The job once Completed, within --sync-timeout-s (the synchronous dialects): 504 and canceled past
        it (`hint` says what to use instead), 422 transcription_failed if it failed."""
        job = await self.wait(job_id, self.config.sync_timeout_s)
        if job is None or not job.status.finished:
            await self.cancel(job_id)
            raise Timeout(f"the transcription did not finish in {self.config.sync_timeout_s:g} s; {hint}",
                          extra={"job_id": job_id})  # fmt: skip
        if job.status == JobStatus.FAILED:
            await self.forget_unless_retained(job)
            raise TranscriptionFailed(job.error, extra={"job_id": job_id})
        return job

    async def wait(self, job_id: str, seconds: float) -> Job | None:
        """Hold until the job is finished (Ready, Completed or Failed) or `seconds` pass. Woken by this
        node's worker, or by another node's NOTIFY; it also looks every WAIT_POLL_S, for a database
        where LISTEN does not reach (PgBouncer in transaction mode)."""
        deadline = time.monotonic() + seconds
        event = self.events.watch(job_id)
        try:
            while True:
                job = await self.store.get(job_id)
                left_s = deadline - time.monotonic()
                if job is None or job.status.finished or left_s <= 0:
                    return job
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), min(left_s, WAIT_POLL_S))
                event.clear()
        finally:
            self.events.forget(job_id, event)
