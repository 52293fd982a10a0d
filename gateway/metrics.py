"""Prometheus metrics of one gateway, in a registry of its own (several apps may share a process in tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas import JobRecord


@dataclass
class GatewayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "jetscribe_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.jobs_submitted = Counter("jetscribe_jobs_submitted", "Jobs accepted over HTTP", registry=r)
        self.upload_bytes = Counter("jetscribe_upload_bytes", "Audio bytes received in accepted uploads", registry=r)
        self.sse_clients = Gauge("jetscribe_sse_clients", "Open event streams", registry=r)
        self.queue_pending = Gauge("jetscribe_queue_pending", "Jobs waiting for a worker", registry=r)
        self.queue_in_flight = Gauge(
            "jetscribe_queue_in_flight", "Jobs delivered to a worker, not yet acked", registry=r
        )
        self.workers_alive = Gauge("jetscribe_workers_alive", "Workers with a live heartbeat", registry=r)
        self.tenant_jobs = Gauge(
            "jetscribe_tenant_jobs", "Jobs of each tenant now queued or running", ["tenant", "status"], registry=r
        )
        self.tenant_audio_seconds = Counter(
            "jetscribe_tenant_audio_seconds",
            "Seconds of audio transcribed for each tenant: jobs done, as this gateway's job-list indexer saw them "
            "finish (sum over gateways)",
            ["tenant"],
            registry=r,
        )

    def count_usage(self, record: JobRecord) -> None:
        """Add a job that has just finished to its tenant's usage."""
        if record.status == "done" and record.duration_secs:
            self.tenant_audio_seconds.labels(record.tenant).inc(record.duration_secs)
