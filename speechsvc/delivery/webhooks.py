"""Signed, retried webhooks for the job dialects (API.md §4): an event is stored, then delivered by a
background loop; a non-2xx answer or a network error is retried up to WEBHOOK_RETRIES more times with
exponential backoff, the same webhook-id every time, a fresh timestamp and signature each attempt."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time

from speechsvc.delivery.callbacks import CallbackSender, outcome_kind
from speechsvc.errors import StoreUnavailable
from speechsvc.jobs.records import DELIVERED, FAILED, PENDING
from speechsvc.operations.logs import log_event
from speechsvc.store import Delivery, Job, Store

log = logging.getLogger(__name__)

WEBHOOK_RETRIES = 3
IDLE_POLL_S = 1.0


def webhook_id(job_id: str, event_type: str) -> str:
    """The event's webhook-id, a function of the job and the event: however many workers store it, a
    receiver that de-duplicates on webhook-id gets it once."""
    return "msg_" + hashlib.sha256(f"{job_id}\n{event_type}".encode()).hexdigest()[:32]


class WebhookSender:
    def __init__(
        self, store: Store, sender: CallbackSender, *, retry_base_s: float, timeout_s: float
    ) -> None:
        self.store = store
        self.sender = sender
        self.retry_base_s = retry_base_s
        self.timeout_s = timeout_s
        self.wake = asyncio.Event()

    async def enqueue(self, job_id: str, url: str, event_type: str, payload: str) -> str:
        """Store a webhook event (its JSON body: speechsvc.service.views.webhook_event) for delivery, unless
        it is stored already (every worker re-enqueues a finished job's missing event: the first insert
        wins); returns its webhook-id."""
        delivery_id = webhook_id(job_id, event_type)
        if await self.store.webhook_add(delivery_id, job_id, url, payload):
            self.wake.set()
        return delivery_id

    async def run(self) -> None:
        while True:
            try:
                await self._round()
            except StoreUnavailable:  # the database is down: deliveries wait for it, none is lost
                await asyncio.sleep(IDLE_POLL_S)

    async def _round(self) -> None:
        for delivery in await self.store.webhook_claim_due(
            time.time(), hold_s=self.timeout_s + self.retry_base_s
        ):
            await self.attempt(delivery)
        next_due = await self.store.webhook_next_due()
        pause = IDLE_POLL_S if next_due is None else min(IDLE_POLL_S, max(0.0, next_due - time.time()))
        self.wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.wake.wait(), pause)

    async def _forget_unless_retained(self, delivery: Delivery, job: Job | None) -> None:
        """Zero retention: once its event is delivered (or given up), a retain=false job is deleted, and
        the stored event keeps no copy of the result."""
        if job is not None and not job.request.retain:
            await self.store.delete(job.id)
            await self.store.delete_audio(job.id)
            await self.store.webhook_forget(delivery.id)

    async def attempt(self, delivery: Delivery) -> None:
        headers = {"Content-Type": "application/json"}
        job = await self.store.get(delivery.job_id)
        # Deepgram's callback_method (post or put); every other dialect's webhooks are POSTs
        method = str(job.request.dialect_options.get("callback_method", "POST")) if job else "POST"
        body = delivery.payload.encode()
        outcome = await self.sender.send(delivery.url, headers, body, delivery.id, method=method)
        self.sender.metrics.callbacks.labels(outcome_kind(outcome)).inc()
        status = outcome["http_status"]
        if status is not None and 200 <= status < 300:
            state, next_at = DELIVERED, time.time()
        elif delivery.attempts > WEBHOOK_RETRIES or outcome.get("refused"):
            state, next_at = FAILED, time.time()
        else:
            state, next_at = PENDING, time.time() + self.retry_base_s * 2 ** (delivery.attempts - 1)
        await self.store.webhook_finish(delivery.id, state, next_at, status, outcome["error"])
        if state != PENDING:
            await self._forget_unless_retained(delivery, job)
        log_event(
            log,
            "webhook",
            request_id=delivery.job_id,
            webhook_id=delivery.id,
            attempt=delivery.attempts,
            http_status=status,
            error=outcome["error"],
            state=state,
        )
