"""Prometheus metrics (prometheus-client), one registry per app so that several apps (tests) coexist."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from speechsvc.jobs.model import JobStatus

RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
LATENCY_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_responses = Counter(
            "speechsvc_http_responses", "HTTP answers by method, route and status",
            ["method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self.jobs = Gauge("speechsvc_jobs", "Jobs in the store by state", ["state"], registry=self.registry)
        self.queue_depth = Gauge("speechsvc_queue_depth", "Jobs waiting for a worker", registry=self.registry)
        self.jobs_finished = Counter(
            "speechsvc_jobs_finished", "Jobs that reached a final state", ["status"], registry=self.registry
        )
        self.audio_seconds = Counter(
            "speechsvc_audio_seconds_transcribed",
            "Seconds of selected audio transcribed",
            registry=self.registry,
        )
        self.realtime_factor = Histogram(
            "speechsvc_realtime_factor", "Processing seconds per second of audio, per job",
            buckets=RTF_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.callbacks = Counter(
            "speechsvc_callbacks", "Callback attempts by outcome (delivered, http_error, network_error, refused)",
            ["outcome"], registry=self.registry,
        )  # fmt: skip

        self.lockstep_batches = Counter(
            "speechsvc_lockstep_batches", "Batches the lockstep decoder ran, by call kind and items in the batch",
            ["kind", "items"], registry=self.registry,
        )  # fmt: skip

        self.live_streams = Gauge("speechsvc_live_streams", "Live streams open", registry=self.registry)
        self.live_audio_seconds = Counter(
            "speechsvc_live_audio_seconds",
            "Seconds of live audio received, per channel",
            registry=self.registry,
        )
        self.live_final_latency = Histogram(
            "speechsvc_live_final_latency_seconds", "From the last speech of an utterance arriving to its final",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip

    def lockstep_batch(self, kind: str, items: int) -> None:
        """One batch of `items` windows ran (encode, generate or align): the batch-size histogram."""
        self.lockstep_batches.labels(kind, str(items)).inc()

    def set_job_counts(self, counts: dict[str, int]) -> None:
        for status in JobStatus:
            self.jobs.labels(status.value).set(counts.get(status.value, 0))
        self.queue_depth.set(counts.get(JobStatus.QUEUED.value, 0))

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
