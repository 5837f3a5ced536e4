"""Durable webhook deliveries for the job dialects (API.md §4): signed, retried on non-2xx with backoff,
the same webhook-id on every attempt, surviving restarts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from speechsvc.jobs.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    id              TEXT PRIMARY KEY,
    job_id          TEXT NOT NULL,
    url             TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    owner           TEXT
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (state, next_attempt_at);
"""
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


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
        data = dict(row)
        data.pop("created_at"), data.pop("updated_at"), data.pop("owner", None)
        return cls(**data)


class WebhookStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, delivery_id: str, job_id: str, url: str, payload: str) -> None:
        """A delivery for the job's event, owned by the job's owner."""
        now = time.time()
        await self.store._write(
            "INSERT INTO webhooks (id, job_id, url, payload, state, next_attempt_at, created_at, updated_at,"
            " owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT owner FROM jobs WHERE id = ?))",
            (delivery_id, job_id, url, payload, PENDING, now, now, now, job_id),
        )

    async def claim_due(self, now: float, hold_s: float) -> list[Delivery]:
        """Due deliveries, each with one more attempt counted and pushed `hold_s` ahead *before* it is sent:
        a crash mid-send means a later retry with the same webhook-id, never a lost delivery."""
        rows = await self.store._fetch(
            "UPDATE webhooks SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?"
            " WHERE state = ? AND next_attempt_at <= ? RETURNING *",
            (now + hold_s, now, PENDING, now),
            commit=True,
        )
        return [Delivery.from_row(row) for row in rows]

    async def finish(
        self, delivery_id: str, state: str, next_attempt_at: float, status: int | None, error: str | None
    ) -> None:
        await self.store._write(
            "UPDATE webhooks SET state = ?, next_attempt_at = ?, last_status = ?, last_error = ?, updated_at = ?"
            " WHERE id = ?",
            (state, next_attempt_at, status, error, time.time(), delivery_id),
        )

    async def for_job(self, job_id: str) -> list[Delivery]:
        rows = await self.store._fetch(
            "SELECT * FROM webhooks WHERE job_id = ? ORDER BY created_at", (job_id,)
        )
        return [Delivery.from_row(row) for row in rows]

    async def jobs_missing_delivery(self) -> list[str]:
        """Finished jobs of the job dialects with a callback URL but no webhook row: a crash came between
        storing the result and storing its event."""
        rows = await self.store._fetch(
            "SELECT jobs.id FROM jobs LEFT JOIN webhooks ON webhooks.job_id = jobs.id"
            " WHERE webhooks.id IS NULL AND jobs.status IN ('Completed', 'Failed', 'Canceled')"
            " AND json_extract(jobs.request, '$.dialect') != 'raw'"
            " AND json_extract(jobs.request, '$.callback_url') IS NOT NULL"
        )
        return [row[0] for row in rows]

    async def next_due(self) -> float | None:
        rows = await self.store._fetch(
            "SELECT MIN(next_attempt_at) FROM webhooks WHERE state = ?", (PENDING,)
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None
