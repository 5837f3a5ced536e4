"""One frozen configuration object, built once at start-up from flags, then environment, then defaults."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechsvc.audio.isolate import DecodeLimits

ENV_PREFIX = "SPEECHSVC_"
GIB = 1024**3
POLLS_PER_REQUEST = 10  # the default poll budget, per request of the main budget


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    model: str = "tiny.en"
    device: str = "auto"  # auto | cpu | cuda
    compute_type: str = "auto"  # auto -> int8 on CPU, float16 on CUDA
    workers: int = 0  # engine slots (concurrent channels) and job workers; 0 = automatic from the cores
    cpu_threads: int = 0  # CTranslate2 threads per slot; 0 = automatic (cores / slots on the CPU)
    # the lockstep decoder's most windows per batch, across channels and jobs; 1 = the sequential decoder
    # alone; 0 = automatic (speechsvc.asr.scheduler.plan_engine)
    batch_size: int = 0
    device_index: str = "0"  # GPUs to use, e.g. "0,1": a replica of the model on each
    max_upload_bytes: int = 2 * GIB
    max_duration_s: float = 4 * 3600.0
    max_channels: int = 32
    decode_timeout_s: float = 600.0
    decode_memory_mb: int = 1024
    no_auth: bool = False
    rate_limit_rpm: int = 0  # requests per key per minute (GET/HEAD polls aside); 0 = no limit
    poll_rate_limit_rpm: int = 0  # GET/HEAD requests per key per minute; 0 = 10 x --rate-limit-rpm
    max_queue: int = 1000  # jobs waiting; more submissions get 503 queue_full
    max_queue_per_key: int = 0  # jobs one key may have waiting; more get 429; 0 = no share beyond max_queue
    # bytes of spool + uploads + audio on disk; beyond it 507 insufficient_storage; 0 = keep 10 % of the
    # data volume free
    max_disk_bytes: int = 0
    max_upload_bytes_per_key: int = 4 * GIB  # declared bytes of one key's unfinished uploads; 0 = no cap
    max_decoded_bytes: int = 2 * GIB  # one job's decoded 16 kHz float32 channels, all together
    retention_h: float = 168.0
    keep_audio: bool = False
    upload_expiry_h: float = 24.0
    webhook_retry_base_s: float = 5.0
    sync_timeout_s: float = 3600.0  # how long the synchronous OpenAI endpoints wait for their job
    webhook_secret: str | None = None
    callback_timeout_s: float = 30.0
    callback_deny_private: bool = False
    # POST /v1/listen {"url": …}: loopback and private addresses are refused unless this is set (an URL
    # fetched on a caller's behalf reaches inside the network; a callback only sends out a result)
    fetch_allow_private: bool = False
    fetch_timeout_s: float = 600.0  # one URL fetch, connect to last byte
    log_level: str = "info"
    # sqlite:///PATH (default: <data-dir>/speechsvc.sqlite3) or postgresql://… (a cluster's shared store)
    database: str = ""
    no_worker: bool = False  # serve the API only: accept, answer, never load the model or decode
    metrics_port: int = 9091  # `speechsvc worker`: /healthz, /readyz, /metrics on this port
    max_live_streams: int = 16  # live WebSocket streams open at once; more are refused (503, retry later)
    live_buffer_s: float = 60.0  # seconds of a live stream's speech waiting to be decoded before it is closed
    live_idle_timeout_s: float = 10.0  # a live stream with no audio and no KeepAlive this long is closed
    lease_s: float = 60.0  # how long a worker holds a job without renewing it (renewed about every second)
    # redact= on file jobs: the first reading only, without the second listen where a number is likely
    redact_single_pass: bool = False

    @property
    def device_indexes(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.device_index.split(","))

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "speechsvc.sqlite3"

    @property
    def poll_budget_rpm(self) -> int:
        """Polls get their own, larger budget: a client polling each job every second must not eat the
        budget of its submissions, yet polls are not free (a database read and a render each)."""
        return self.poll_rate_limit_rpm or POLLS_PER_REQUEST * self.rate_limit_rpm

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.db_path}"

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            decode_timeout_s=self.decode_timeout_s, memory_bytes=self.decode_memory_mb * 2**20
        )


HELP = {
    "host": "address to listen on; anything but loopback needs an API key (or --no-auth)",
    "port": "HTTP port of `serve`",
    "data_dir": "SQLite store, spooled and stored audio, uploads, the joined model cache",
    "model": "default model: tiny.en, base, a CTranslate2 directory, or a hub name (needs internet)",
    "device": "auto (CUDA when CTranslate2 sees a GPU), cpu or cuda",
    "compute_type": "CTranslate2 compute type; auto = int8 on CPU, float16 on CUDA",
    "workers": "engine slots per device (engine calls at once); 0 = one per core on the CPU, 2 per GPU",
    "cpu_threads": "CTranslate2 threads per slot; 0 = cores / slots",
    "batch_size": "most windows per batch of the lockstep decoder, across channels and jobs; 1 = no batching "
    "(the library's sequential decoder alone); 0 = 4 per core on CPU (at most 16), 16 on CUDA",
    "device_index": "GPUs to use, e.g. 0,1: a replica of the model on each",
    "max_upload_bytes": "largest request body or upload, checked while streaming (413)",
    "max_duration_s": "longest audio accepted, in seconds (413 audio_too_long)",
    "max_channels": "most audio channels of a file, all streams together (422 too_many_channels)",
    "decode_timeout_s": "time limit of each decoder child process",
    "decode_memory_mb": "memory limit of each decoder child process",
    "no_auth": "serve without API keys, on any address",
    "rate_limit_rpm": "requests per key per minute, GET/HEAD polls aside (429); 0 = no limit",
    "poll_rate_limit_rpm": "GET/HEAD requests per key per minute; 0 = 10 x --rate-limit-rpm",
    "max_queue": "jobs waiting, all keys together; more get 503 queue_full",
    "max_queue_per_key": "jobs one key may have waiting; more get 429 key_queue_full; 0 = no share",
    "max_disk_bytes": "spool + uploads + audio on disk (507 beyond it); 0 = keep 10 % of the volume free",
    "max_upload_bytes_per_key": "declared bytes of one key's unfinished uploads (429 beyond it); 0 = no cap",
    "max_decoded_bytes": "one job's decoded audio, all channels together (413 decoded_too_large)",
    "retention_h": "hours after which finished jobs, results and audio are deleted",
    "keep_audio": "keep a job's audio until retention instead of deleting it once the result is stored",
    "upload_expiry_h": "hours after which a resumable upload expires and its bytes are deleted",
    "webhook_retry_base_s": "first retry delay of job webhooks (doubles, 3 retries)",
    "sync_timeout_s": "how long the synchronous OpenAI and Deepgram endpoints wait for their job (then 504)",
    "webhook_secret": "sign callbacks and webhooks (Standard Webhooks and X-Orpheus-Signature)",
    "callback_timeout_s": "timeout of one callback or webhook attempt",
    "callback_deny_private": "also refuse loopback and private callback addresses",
    "fetch_allow_private": 'let POST /v1/listen {"url"} fetch from loopback and private addresses',
    "fetch_timeout_s": 'time limit of one POST /v1/listen {"url"} fetch, connect to last byte',
    "log_level": "debug, info, warning or error (the offline CLI shows library logs only at debug)",
    "database": "sqlite:///PATH (default <data-dir>/speechsvc.sqlite3) or postgresql://… shared by a cluster",
    "no_worker": "serve the API only: accept, probe, store, answer; never load the model",
    "metrics_port": "`speechsvc worker`: port of its /healthz, /readyz and /metrics",
    "max_live_streams": "live streams (GET /v1/listen WebSocket) open at once; more get 503 live_streams_full",
    "live_buffer_s": "seconds of a live stream's speech waiting to be decoded; beyond it the stream is closed",
    "live_idle_timeout_s": "seconds without audio or KeepAlive after which a live stream is closed",
    "lease_s": "seconds a worker holds a job without renewing it; a dead worker's jobs are taken after this",
    "redact_single_pass": "redact= on file jobs: redact the first reading only, without decoding again where "
    "a number is likely (cheaper, lower recall: see the README's Redaction)",
}
# The flags of the commands that use only part of the configuration.
TRANSCRIBE_FIELDS = ("data_dir", "model", "device", "compute_type", "workers", "cpu_threads", "batch_size",
                     "device_index", "max_duration_s", "max_channels", "max_decoded_bytes", "decode_timeout_s",
                     "decode_memory_mb", "redact_single_pass", "log_level")  # fmt: skip
STORE_FIELDS = ("data_dir", "database", "log_level")
MODELS_FIELDS = ("data_dir", "model", "log_level")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _convert(field: dataclasses.Field[Any], text: str) -> Any:
    kind = str(field.type)
    if "bool" in kind:
        return _parse_bool(text)
    if kind.startswith("int"):
        return int(text)
    if kind.startswith("float"):
        return float(text)
    if "Path" in kind:
        return Path(text)
    return text


def add_config_arguments(
    parser: argparse.ArgumentParser, *, nested: bool = False, only: tuple[str, ...] | None = None
) -> None:
    """Add one flag per Config field (or per field in `only`), each with its help, default and environment
    variable; argparse's own defaults are None so that the environment can fill the gaps.

    `nested` is for a sub-subcommand's copy of the flags: its defaults are suppressed, so that they do
    not overwrite what was given before the sub-subcommand (argparse applies subparser defaults last).
    """
    for field in dataclasses.fields(Config):
        if only is not None and field.name not in only:
            continue
        flag = "--" + field.name.replace("_", "-")
        default = argparse.SUPPRESS if nested else None
        shown = "off" if field.default is False else "none" if field.default in (None, "") else field.default
        text = f"{HELP[field.name]} (default: {shown}; env {ENV_PREFIX}{field.name.upper()})"
        text = text.replace("%", "%%")  # argparse formats help with %
        if "bool" in str(field.type):
            parser.add_argument(flag, action="store_const", const=True, default=default, help=text)
        else:
            parser.add_argument(flag, default=default, metavar=field.name.upper(), help=text)


def build_config(args: argparse.Namespace | Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    """Flags first, then SPEECHSVC_* environment variables, then the defaults."""
    given = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Config):
        raw = given.get(field.name)
        if raw is None:
            raw = environ.get(ENV_PREFIX + field.name.upper())
        if raw is None:
            continue
        values[field.name] = _convert(field, raw) if isinstance(raw, str) else raw
    config = Config(**values)
    _validate(config)
    return config


def _validate(config: Config) -> None:
    if config.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, not {config.device!r}")
    if config.workers < 0 or config.cpu_threads < 0 or config.batch_size < 0:
        raise ValueError("--workers, --cpu-threads and --batch-size must be >= 0 (0 = automatic)")
    try:
        if not config.device_indexes or min(config.device_indexes) < 0:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--device-index must list GPU numbers, like 0 or 0,1; not {config.device_index!r}"
        ) from None
    if config.max_upload_bytes < 1:
        raise ValueError("--max-upload-bytes must be positive")
    if config.poll_rate_limit_rpm < 0:
        raise ValueError("--poll-rate-limit-rpm must be >= 0")
    if config.rate_limit_rpm < 0 or config.max_queue < 1 or config.retention_h <= 0:
        raise ValueError("--rate-limit-rpm must be >= 0, --max-queue >= 1 and --retention-h > 0")
    if config.max_duration_s <= 0:
        raise ValueError("--max-duration-s must be positive")
    if not config.database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ValueError("--database must be sqlite:///PATH or postgresql://…")
    if config.fetch_timeout_s <= 0:
        raise ValueError("--fetch-timeout-s must be positive")
    if config.max_live_streams < 0 or config.live_buffer_s <= 0 or config.live_idle_timeout_s <= 0:
        raise ValueError("--max-live-streams must be >= 0, --live-buffer-s and --live-idle-timeout-s > 0")
    if config.lease_s <= 0:
        raise ValueError("--lease-s must be positive")
    if config.max_upload_bytes_per_key < 0:
        raise ValueError("--max-upload-bytes-per-key must be >= 0")
    if config.max_queue_per_key < 0 or config.max_disk_bytes < 0 or config.max_decoded_bytes < 1:
        raise ValueError("--max-queue-per-key and --max-disk-bytes must be >= 0, --max-decoded-bytes > 0")


def config_from_env() -> Config:
    """A Config from the environment alone (used by the offline CLI)."""
    return build_config({}, os.environ)
