"""How the job dialects show a job: OpenAI-style transcription jobs (seed 002) and audio jobs (seed 000).
Used by their handlers and, as webhook payloads, by the worker."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from speechsvc.errors import DEEPGRAM_ERR_CODES
from speechsvc.jobs.model import JobStatus
from speechsvc.results.deepgram import DeepgramOptions, render_deepgram
from speechsvc.results.openai import render_openai
from speechsvc.results.render import render
from speechsvc.store import Job

LOWER_STATUS = {
    JobStatus.RECEIVED: "queued",
    JobStatus.QUEUED: "queued",
    JobStatus.PENDING: "running",
    JobStatus.READY: "completed",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
}
EVENT_TYPES = {"completed": "transcription.completed", "failed": "transcription.failed",
               "canceled": "transcription.canceled"}  # fmt: skip


def _when(timestamp: float | None) -> int | None:
    return int(timestamp) if timestamp is not None else None


def openai_result(job: Job) -> tuple[str, str]:
    """The finished job's result in its OpenAI response_format: (body, content type)."""
    assert job.result is not None
    return render_openai(
        job.result, job.request.response_format or "json", job.request.granularities, job.request.options.task
    )


def _embedded(body: str, content_type: str) -> Any:
    return json.loads(body) if content_type == "application/json" else body


def _job_view(job: Job, kind: str) -> dict[str, Any]:
    """What both job dialects show of a job."""
    return {
        "id": job.id,
        "object": kind,
        "status": LOWER_STATUS[job.status],
        "progress": round(job.progress, 1),
        "model": job.request.model,
        "task": job.request.options.task,
        "created_at": _when(job.created_at),
        "completed_at": _when(job.finished_at),
        "error": {"message": job.error} if job.error else None,
    }


def transcription_job_view(job: Job, *, with_result: bool = False) -> dict[str, Any]:
    view = _job_view(job, "transcription.job") | {
        "response_format": job.request.response_format or "json",
        "result_url": f"/v1/transcription-jobs/{job.id}/result",
    }
    if with_result and job.result is not None:
        view["result"] = _embedded(*openai_result(job))
    return view


def audio_job_result(job: Job) -> Any:
    """The result in the job's `format`: an object for json, text otherwise."""
    assert job.result is not None
    spec = job.request.format
    if spec.name == "json":
        return {**job.result, "status": job.status.value}
    return render(job.result, spec)


def audio_job_view(job: Job) -> dict[str, Any]:
    view = _job_view(job, "audio.job") | {
        "upload_id": job.request.upload_id,
        "format": str(job.request.format),
    }
    if job.result is not None and job.status in (JobStatus.READY, JobStatus.COMPLETED):
        view["result"] = audio_job_result(job)
    return view


def event_for(job: Job) -> tuple[str, dict[str, Any]]:
    """The webhook event type and payload data of a finished job of a job dialect."""
    data = (
        audio_job_view(job)
        if job.request.dialect == "uploads"
        else transcription_job_view(job, with_result=True)
    )
    return EVENT_TYPES[data["status"]], data


def deepgram_result(job: Job) -> dict[str, Any]:
    """A finished Deepgram job's answer (ListenV1Response), or Deepgram's error shape if it failed."""
    if job.result is None or job.status not in (JobStatus.READY, JobStatus.COMPLETED):
        message = job.error or f"the job is {LOWER_STATUS[job.status]}"
        return {"err_code": DEEPGRAM_ERR_CODES[500], "err_msg": message, "request_id": job.id}
    options = DeepgramOptions.from_json(job.request.dialect_options)
    return render_deepgram(
        job.result, options, request_id=job.id, created_at=job.created_at, model=job.request.model
    )


def webhook_event(job: Job) -> tuple[str, str]:
    """A finished job's webhook: its event type (with the job, it makes the webhook-id) and what it
    carries: for the Deepgram dialect its answer itself, as Deepgram's callbacks do; for the others the
    event `{type, timestamp, data}`."""
    if job.request.dialect == "deepgram":
        return f"deepgram.{job.status.value.lower()}", json.dumps(deepgram_result(job), ensure_ascii=False)
    event_type, data = event_for(job)
    event = {"type": event_type, "timestamp": datetime.now(timezone.utc).isoformat(), "data": data}
    return event_type, json.dumps(event, ensure_ascii=False)
