"""API keys (API.md §0): `ssk_…` keys, stored as SHA-256, compared in constant time; per-key rate limits.

Accepted as `Authorization: Bearer <key>`, `Authorization: Token <key>` (Deepgram's), `Sec-WebSocket-Protocol:
token, <key>` (Deepgram's, for browsers' WebSockets), `x-token: <key>` (AppTek) and `x-api-key: <key>`. With no key
ever created and the server on loopback, auth is off (local use); `--no-auth` turns it off anywhere. Once a
key was created, auth stays on even when every key is revoked: a revoked key never works again.

Ownership: every job and upload belongs to the key that made it. A `tenant` key (the default) sees only
its own, and another key's job answers 404 as if it did not exist; an `admin` key (operators, dashboards)
sees everything. With auth off every caller is the one local admin.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from aiohttp import web

from speechsvc.errors import AuthenticationError, RateLimited
from speechsvc.store import Store

KEY_PREFIX = "ssk_"
TOUCH_INTERVAL_S = 60.0  # last_used_at is written at most this often per key
RATE_WINDOW_S = 60.0
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/live"})
OPEN_PREFIXES = (
    "/docs/static/",
    "/live/static/",
)  # the pages' own scripts and style (the socket needs a key)
Clock = Callable[[], float]


class KeyScope(str, Enum):
    TENANT = "tenant"  # sees only its own jobs and uploads
    ADMIN = "admin"  # sees every job and upload


@dataclass(frozen=True)
class Identity:
    """Who is calling: a key id and its scope."""

    key_id: str
    admin: bool = False

    def owns(self, owner: str | None) -> bool:
        """May this caller see a job or upload owned by `owner`?"""
        return self.admin or owner == self.key_id


LOCAL = Identity("local", admin=True)  # auth off: one local user who sees everything


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def create_key(store: Store, name: str, scope: KeyScope = KeyScope.TENANT) -> tuple[str, str]:
    """A new key for `name`: returns (id, key). The key itself is not stored and cannot be shown again."""
    key = new_key()
    key_id = "key_" + uuid.uuid4().hex[:12]
    await store.add_key(key_id, name, key_sha256(key), scope.value)
    return key_id, key


def presented_key(request: web.Request) -> str | None:
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    offered = [part.strip() for part in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if len(offered) == 2 and offered[0].lower() in ("token", "bearer") and offered[1]:
        return offered[1]  # a browser's WebSocket, which cannot set headers: Deepgram's `token, <key>`
    return request.headers.get("x-token") or request.headers.get("x-api-key") or None


class Authenticator:
    """Who is calling: a key's Identity, LOCAL (auth off), or 401."""

    def __init__(self, store: Store, *, enabled: bool, loopback: bool, clock: Clock = time.monotonic) -> None:
        self.store = store
        self.enabled = enabled
        self.loopback = loopback
        self.clock = clock
        self._touched: dict[str, float] = {}

    async def identify(self, request: web.Request) -> Identity:
        if not self.enabled:
            return LOCAL
        keys = await self.store.active_keys()
        # revoked keys count here: revoking the last key must not turn auth off again
        if not keys and self.loopback and await self.store.count_keys() == 0:
            return LOCAL
        given = presented_key(request)
        if given is None:
            raise AuthenticationError("an API key is required (Authorization: Bearer ssk_…)")
        digest = key_sha256(given)
        match = None
        for key_id, stored, scope in keys:  # compare with every key, in constant time each
            if hmac.compare_digest(digest, stored):
                match = Identity(key_id, admin=scope == KeyScope.ADMIN.value)
        if match is None:
            raise AuthenticationError("the API key is not valid")
        now = self.clock()
        if now - self._touched.get(match.key_id, -math.inf) >= TOUCH_INTERVAL_S:
            self._touched[match.key_id] = now
            await self.store.touch_key(match.key_id)
        return match


class RateLimiter:
    """At most `per_minute` counted requests per identity in any 60 s window (0 = no limit), counted in the
    store: in this process on one machine, in the shared database across the API nodes of a cluster."""

    def __init__(self, store: Store, per_minute: int, clock: Clock = time.time) -> None:
        self.store = store
        self.per_minute = per_minute
        self.clock = clock

    async def check(self, identity: str) -> None:
        if self.per_minute <= 0:
            return
        wait_s = await self.store.rate_hit(identity, self.per_minute, RATE_WINDOW_S, self.clock())
        if wait_s is not None:
            raise RateLimited(
                f"more than {self.per_minute} requests in a minute for this key",
                retry_after_s=max(1, math.ceil(wait_s)),
            )
