"""Job states and the stored description of a job request."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from speechsvc.asr.engine import TranscribeOptions
from speechsvc.audio.layout import ChannelRef, parse_channel_layout
from speechsvc.diarize.clustering import SpeakerCount
from speechsvc.redact import Redaction
from speechsvc.results.formats import FormatSpec, parse_format


class JobStatus(str, Enum):
    """The API's x-status values (API.md §1)."""

    RECEIVED = "Received"
    QUEUED = "Queued"
    PENDING = "Pending"
    READY = "Ready"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.READY, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)


@dataclass(frozen=True)
class JobRequest:
    """Everything a submission asked for, stored with the job as JSON."""

    model: str
    layout: tuple[ChannelRef, ...] | None = None
    labels: tuple[str, ...] | None = None
    options: TranscribeOptions = field(default_factory=TranscribeOptions)
    format: FormatSpec = field(default_factory=FormatSpec)
    callback_url: str | None = None
    userdata: str | None = None
    x_request_id: str | None = None  # the submitting HTTP request's X-Request-ID, for the job's log lines
    # raw (single-attempt callback) | openai | jobs | uploads | deepgram (signed, retried webhooks)
    dialect: str = "raw"
    response_format: str | None = None  # the OpenAI dialects' result shape
    granularities: tuple[str, ...] = ()
    upload_id: str | None = None
    retain: bool = True  # False: the job and its result are deleted once delivered (zero retention)
    crosstalk: str = "auto"  # auto: suppress a channel's delayed copy of another (speechsvc.audio.crosstalk)
    speakers: SpeakerCount | None = None  # diarize=true: split each channel by speaker (speechsvc.diarize)
    # what a dialect needs to render its own result shape later (Deepgram: utterances, search, tags, …)
    dialect_options: dict[str, Any] = field(default_factory=dict)
    redaction: Redaction | None = None  # redact=…: taken out of the result and the audio (speechsvc.redact)

    @property
    def single_callback(self) -> bool:
        """The raw dialect's one-attempt callback (as opposed to the job dialects' retried webhooks)."""
        return self.dialect == "raw" and self.callback_url is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "channel_layout": ",".join(ref.token for ref in self.layout) if self.layout else None,
            "channel_labels": list(self.labels) if self.labels else None,
            "options": asdict(self.options),
            "format": str(self.format),
            "callback_url": self.callback_url,
            "userdata": self.userdata,
            "x_request_id": self.x_request_id,
            "dialect": self.dialect,
            "response_format": self.response_format,
            "granularities": list(self.granularities),
            "upload_id": self.upload_id,
            "retain": self.retain,
            "crosstalk": self.crosstalk,
            "speakers": asdict(self.speakers) if self.speakers is not None else None,
            "dialect_options": self.dialect_options,
            "redaction": self.redaction.to_json() if self.redaction is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRequest:
        labels = data.get("channel_labels")
        return cls(
            model=data["model"],
            layout=parse_channel_layout(data.get("channel_layout")),
            labels=tuple(labels) if labels else None,
            options=TranscribeOptions(**data.get("options", {})),
            format=parse_format(data.get("format")),
            callback_url=data.get("callback_url"),
            userdata=data.get("userdata"),
            x_request_id=data.get("x_request_id"),
            dialect=data.get("dialect", "raw"),
            response_format=data.get("response_format"),
            granularities=tuple(data.get("granularities", ())),
            upload_id=data.get("upload_id"),
            retain=data.get("retain", True),
            crosstalk=data.get("crosstalk", "off"),  # jobs stored before it existed ran without it
            speakers=SpeakerCount(**data["speakers"]) if data.get("speakers") else None,
            dialect_options=data.get("dialect_options") or {},
            redaction=Redaction.from_json(data.get("redaction")),
        )
