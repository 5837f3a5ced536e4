"""The completion callback of the raw-binary dialect: one POST, exactly one attempt (API.md §1).

Address policy: link-local and metadata addresses are always refused; with deny_private, loopback and
private ranges too. The check runs on the address a name resolves to, inside the connector's resolver,
so the connection goes only to an address that was checked (no DNS-rebinding gap between check and use).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from standardwebhooks.webhooks import Webhook

from speechsvc.errors import InvalidCallbackUrl
from speechsvc.jobs.model import JobStatus
from speechsvc.jobs.store import Job, Store
from speechsvc.logs import log_event
from speechsvc.metrics import Metrics
from speechsvc.results.formats import FormatSpec
from speechsvc.results.render import render

log = logging.getLogger(__name__)

CALLBACK_MAX_RESPONSE_BYTES = 64 * 1024
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata"})
# Cloud metadata services that are not link-local (AWS IPv6, Alibaba): refused like link-local ones.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The callback address is not allowed by the address policy."""


def check_address(address: IPAddress, *, deny_private: bool) -> None:
    """Raise AddressRefused for link-local/metadata addresses, and for private ones if asked."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if (
        address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or address in METADATA_ADDRESSES
    ):
        raise AddressRefused(f"callback address {address} is link-local, metadata or reserved")
    if deny_private and (address.is_private or address.is_loopback):
        raise AddressRefused(f"callback address {address} is private or loopback")


def validate_callback_url(url: str, *, deny_private: bool) -> str:
    """Check a callback URL at submit time (scheme, host, literal addresses); 400 if it is refused."""
    if len(url) > 2048:
        raise InvalidCallbackUrl("the callback URL is longer than 2048 characters", param="callback")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidCallbackUrl("the callback must be an absolute http:// or https:// URL", param="callback")
    if parts.hostname.lower() in METADATA_HOSTS:
        raise InvalidCallbackUrl("metadata hosts are never called back", param="callback")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url
    try:
        check_address(literal, deny_private=deny_private)
    except AddressRefused as exc:
        raise InvalidCallbackUrl(str(exc), param="callback") from exc
    return url


class PolicyResolver(AbstractResolver):
    """Resolves with `inner`, then drops every address the policy refuses."""

    def __init__(self, inner: AbstractResolver, *, deny_private: bool) -> None:
        self.inner = inner
        self.deny_private = deny_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        allowed: list[ResolveResult] = []
        refusal = ""
        for entry in await self.inner.resolve(host, port, family):
            try:
                check_address(ipaddress.ip_address(entry["host"]), deny_private=self.deny_private)
                allowed.append(entry)
            except AddressRefused as exc:
                refusal = str(exc)
        if not allowed:
            raise AddressRefused(refusal or f"{host} resolves to no allowed address")
        return allowed

    async def close(self) -> None:
        await self.inner.close()


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

    async def send(self, url: str, headers: dict[str, str], body: bytes, message_id: str) -> dict[str, Any]:
        """One POST: no retry, no redirect, the response read capped. Returns the outcome.

        With a signing secret, the Standard Webhooks headers carry `message_id` as webhook-id and a fresh
        timestamp and signature."""
        attempted_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        outcome: dict[str, Any] = {
            "url": url,
            "attempted_at": attempted_at,
            "http_status": None,
            "error": None,
        }
        if self.signer is not None:
            when = datetime.now(timezone.utc)
            msg_id = message_id
            headers = {
                **headers,
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": self.signer.sign(msg_id, when, body.decode()),
            }
        started = time.monotonic()
        try:
            validate_callback_url(url, deny_private=self.deny_private)
            async with self.session.post(
                url, data=body, headers=headers, allow_redirects=False, timeout=self.timeout
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
