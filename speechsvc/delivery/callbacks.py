"""The completion callback of the raw-binary dialect: one POST, exactly one attempt (API.md §1).

Where it may go is speechsvc.delivery.address_policy: checked at submit, and again here just before connecting, on
the host exactly as aiohttp connects to it (a literal IP never reaches the resolver's check).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import datetime, timezone
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from speechsvc.delivery.address_policy import AddressRefused, check_host, connect_host
from speechsvc.errors import InvalidCallbackUrl
from speechsvc.jobs.model import JobStatus
from speechsvc.operations.logs import log_event
from speechsvc.operations.metrics import Metrics
from speechsvc.results.formats import FormatSpec
from speechsvc.results.render import render
from speechsvc.store import Job, Store

log = logging.getLogger(__name__)

CALLBACK_MAX_RESPONSE_BYTES = 64 * 1024
SIGNED_HEADERS = ("webhook-id", "x-requestid", "x-status", "x-error", "x-userdata")


def headers_signature(secret: str, stamp: str, headers: dict[str, str], body: bytes) -> str:
    """`X-Speechsvc-Signature`'s v1: HMAC-SHA256(secret, "<t>\n" + each of SIGNED_HEADERS' value ("" when
    absent) + "\n" + hex SHA-256 of the body), so the job a callback names (x-requestid), its status and
    userdata are bound to the body. X-Orpheus-Signature (seed 000's) signs the body alone: two jobs with
    the same txt body carry the same one."""
    lower = {name.lower(): value for name, value in headers.items()}
    lines = [stamp, *(lower.get(name, "") for name in SIGNED_HEADERS), hashlib.sha256(body).hexdigest()]
    return hmac.new(secret.encode(), "\n".join(lines).encode(), hashlib.sha256).hexdigest()


def verify_headers(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does with X-Speechsvc-Signature (the timestamp's age is its own check)."""
    lower = {name.lower(): value for name, value in headers.items()}
    fields = dict(
        part.split("=", 1) for part in lower.get("x-speechsvc-signature", "").split(",") if "=" in part
    )
    expected = headers_signature(secret, fields.get("t", ""), headers, body)
    return hmac.compare_digest(fields.get("v1", ""), expected)


class CallbackSender:
    """Makes the single callback attempt of a finished job and records its outcome."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float,
        deny_private: bool,
        secret: str | None,
        metrics: Metrics,
    ) -> None:
        self.session = session
        self.metrics = metrics
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.deny_private = deny_private
        self.secret = secret
        self.signer = Webhook(secret) if secret else None

    def message(self, job: Job) -> tuple[dict[str, str], bytes]:
        """The headers and body of the callback for a finished job."""
        headers = {"x-requestid": job.id}
        if job.request.userdata is not None:
            headers["x-userdata"] = job.request.userdata
        if job.status == JobStatus.FAILED or job.result is None:
            error = job.error or "failed"
            headers.update(
                {
                    "x-status": JobStatus.FAILED.value,
                    "x-error": header_safe(error),
                    "Content-Type": "text/plain; charset=utf-8",
                }
            )
            return headers, error.encode()
        spec: FormatSpec = job.request.format
        body = render({**job.result, "status": JobStatus.COMPLETED.value}, spec)
        headers.update({"x-status": JobStatus.COMPLETED.value, "Content-Type": spec.content_type})
        return headers, body.encode()

    async def deliver_for(self, store: Store, job: Job) -> None:
        """Make the one attempt, unless one was already started (then never again)."""
        url = job.request.callback_url
        if url is None or not await store.mark_callback_started(job.id):
            return
        headers, body = self.message(job)
        outcome = await self.send(url, headers, body, f"msg_{job.id}")
        self.metrics.callbacks.labels(outcome_kind(outcome)).inc()
        log_event(
            log,
            "callback",
            request_id=job.id,
            x_request_id=job.request.x_request_id,
            http_status=outcome["http_status"],
            error=outcome["error"],
            duration_s=outcome["duration_s"],
        )
        await store.finish_callback(job.id, outcome)
        if not job.request.retain:  # zero retention: the one attempt was the delivery
            await store.delete(job.id)
            await store.delete_audio(job.id)

    async def send(
        self, url: str, headers: dict[str, str], body: bytes, message_id: str, method: str = "POST"
    ) -> dict[str, Any]:
        """One POST (or `method`): no retry, no redirect, the response read capped. Returns the outcome.

        Every delivery carries `message_id` as `webhook-id` (receivers de-duplicate on it). With a signing
        secret it is signed twice, with a fresh timestamp each attempt: the Standard Webhooks headers
        (`webhook-timestamp`, `webhook-signature`), and seed 000's `X-Orpheus-Signature: t=<unix>,v1=<hex
        HMAC-SHA256(secret, "<t>.<raw body>")>`, the key being the --webhook-secret string as given, so a
        receiver written against seed 000 verifies it unchanged. Only the Standard Webhooks signature binds
        the job (through webhook-id) and `X-Speechsvc-Signature` binds the x-* headers too (see
        `headers_signature`); seed 000's binds the body alone."""
        attempted_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        outcome: dict[str, Any] = {
            "url": url,
            "attempted_at": attempted_at,
            "http_status": None,
            "error": None,
        }
        headers = {**headers, "webhook-id": message_id}
        if self.signer is not None and self.secret is not None:
            when = datetime.now(timezone.utc)
            stamp = str(int(when.timestamp()))
            orpheus = hmac.new(self.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
            headers.update({
                "webhook-timestamp": stamp,
                "webhook-signature": self.signer.sign(message_id, when, body.decode()),
                "X-Orpheus-Signature": f"t={stamp},v1={orpheus}",
            })  # fmt: skip
            headers["X-Speechsvc-Signature"] = (
                f"t={stamp},v1={headers_signature(self.secret, stamp, headers, body)}"
            )
        started = time.monotonic()
        try:
            check_host(connect_host(url), deny_private=self.deny_private)
            async with self.session.request(
                method, url, data=body, headers=headers, allow_redirects=False, timeout=self.timeout
            ) as response:
                outcome["http_status"] = response.status
                await response.content.read(CALLBACK_MAX_RESPONSE_BYTES)
        except (AddressRefused, InvalidCallbackUrl) as exc:
            outcome["error"] = str(exc)
            outcome["refused"] = True
        except Exception as exc:  # a callback failure is recorded, never raised: the job is done
            outcome["error"] = f"{type(exc).__name__}: {exc}"[:500]
            if isinstance(exc.__cause__, AddressRefused):
                outcome["error"] = str(exc.__cause__)
                outcome["refused"] = True
        outcome["duration_s"] = round(time.monotonic() - started, 3)
        return outcome


def outcome_kind(outcome: dict[str, Any]) -> str:
    if outcome.get("refused"):
        return "refused"
    if outcome["http_status"] is None:
        return "network_error"
    return "delivered" if 200 <= outcome["http_status"] < 300 else "http_error"


def header_safe(text: str) -> str:
    """One line of printable latin-1: what an HTTP header can carry."""
    cleaned = " ".join(text.split())
    return cleaned.encode("latin-1", "replace").decode("latin-1")[:1000]
