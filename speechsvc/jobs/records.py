"""What the store keeps, as the rest of the service sees it: jobs, uploads, webhook deliveries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from speechsvc.jobs.model import JobRequest, JobStatus

UNFINISHED = (JobStatus.RECEIVED.value, JobStatus.QUEUED.value, JobStatus.PENDING.value)
FINISHED_FOR_RETENTION = (JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELED.value)
INTERRUPTED_CALLBACK = "callback attempt interrupted by a restart; not retried (at most one attempt)"
EXPIRED_UPLOAD_KEPT_S = 24 * 3600.0  # an expired upload's row answers "expired" this long, then goes
# webhook delivery states
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def _json(value: Any) -> Any:
    if value is None or isinstance(value, dict):
        return value
    return json.loads(value) if value else None


@dataclass(frozen=True)
class Job:
    id: str
    status: JobStatus
    created_at: float
    updated_at: float
    finished_at: float | None
    media_type: str
    audio_bytes: int
    request: JobRequest
    progress: float
    error: str | None
    result: dict[str, Any] | None
    attempts: int
    callback_started_at: float | None
    callback_outcome: dict[str, Any] | None
    owner: str | None = None  # the API key id that submitted it ("local" with auth off)
    claimed_at: float | None = None  # when a worker last took it

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls(
            id=row["id"],
            status=JobStatus(row["status"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            media_type=row["media_type"],
            audio_bytes=row["audio_bytes"],
            request=JobRequest.from_json(_json(row["request"])),
            progress=row["progress"],
            error=row["error"],
            result=_json(row["result"]),
            attempts=row["attempts"],
            callback_started_at=row["callback_started_at"],
            callback_outcome=_json(row["callback_outcome"]),
            owner=row["owner"],
            claimed_at=row["claimed_at"],
        )


class UploadState(str, Enum):
    PENDING = "pending"  # created, no bytes yet
    UPLOADING = "uploading"  # some bytes received
    COMPLETED = "completed"  # every byte received, checked, probed
    EXPIRED = "expired"  # past expires_at; its bytes are deleted


@dataclass(frozen=True)
class Upload:
    id: str
    file_name: str
    mime_type: str
    size_bytes: int
    received_bytes: int
    state: UploadState
    token_sha256: str
    sha256: str | None
    created_at: float
    expires_at: float
    completed_at: float | None
    owner: str | None = None  # the API key id that created it ("local" with auth off)
    generation: int = 0  # counts every change of its bytes: `complete` records a hash only if unchanged

    @classmethod
    def from_row(cls, row: Any) -> Upload:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in dict(row).items() if k in names and k != "state"},
                   state=UploadState(row["state"]))  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    id: str
    job_id: str
    url: str
    payload: str
    attempts: int
    state: str
    next_attempt_at: float
    last_status: int | None
    last_error: str | None

    @classmethod
    def from_row(cls, row: Any) -> Delivery:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in dict(row).items() if k in names})
