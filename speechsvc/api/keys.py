"""Typed application keys shared by the dialects."""

from __future__ import annotations

from aiohttp import web

from speechsvc.asr.models import ModelRegistry
from speechsvc.auth import Authenticator, RateLimiter
from speechsvc.config import Config
from speechsvc.metrics import Metrics
from speechsvc.service import Service
from speechsvc.store import Store
from speechsvc.uploads import Uploads

CONFIG = web.AppKey("config", Config)
REGISTRY = web.AppKey("registry", ModelRegistry)
STORE = web.AppKey("store", Store)
SERVICE = web.AppKey("service", Service)
METRICS = web.AppKey("metrics", Metrics)
AUTH = web.AppKey("auth", Authenticator)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
POLL_RATE_LIMITER = web.AppKey("poll_rate_limiter", RateLimiter)
UPLOADS = web.AppKey("uploads", Uploads)
ROLE = web.AppKey("role", str)  # all | api | worker
