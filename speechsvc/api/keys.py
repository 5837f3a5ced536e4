"""Typed application keys shared by the dialects."""

from __future__ import annotations

from aiohttp import web

from speechsvc.access.auth import Authenticator, RateLimiter
from speechsvc.asr.models import ModelRegistry
from speechsvc.config import Config
from speechsvc.live.hub import LiveHub
from speechsvc.operations.metrics import Metrics
from speechsvc.service.facade import Service
from speechsvc.service.remote import RemoteMedia
from speechsvc.service.uploads import Uploads
from speechsvc.store import Store

CONFIG = web.AppKey("config", Config)
REGISTRY = web.AppKey("registry", ModelRegistry)
STORE = web.AppKey("store", Store)
SERVICE = web.AppKey("service", Service)
METRICS = web.AppKey("metrics", Metrics)
AUTH = web.AppKey("auth", Authenticator)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
POLL_RATE_LIMITER = web.AppKey("poll_rate_limiter", RateLimiter)
UPLOADS = web.AppKey("uploads", Uploads)
REMOTE = web.AppKey("remote", RemoteMedia)  # POST /v1/listen {"url"}: audio fetched from a URL
ROLE = web.AppKey("role", str)  # all | api | worker
LIVE = web.AppKey("live", LiveHub)  # GET /v1/listen: the open live streams
