"""Prometheus metrics of one gateway, in a registry of its own (several apps may share a process in tests)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas import JobRecord, JobStatus

if TYPE_CHECKING:
    from gateway.models import ModelReport


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
        self.queue_pending = Gauge("jetscribe_queue_pending", "Jobs waiting for a worker, all models", registry=r)
        self.queue_in_flight = Gauge(
            "jetscribe_queue_in_flight", "Jobs delivered to a worker, not yet acked, all models", registry=r
        )
        self.workers_alive = Gauge("jetscribe_workers_alive", "Workers with a live heartbeat", registry=r)
        model = ["model"]
        self.model_on_offer = Gauge(
            "jetscribe_model_on_offer", "1 when jobs for the model are accepted (served or declared)", model, registry=r
        )
        self.model_workers = Gauge("jetscribe_model_workers", "Live workers serving the model", model, registry=r)
        self.model_slots = Gauge("jetscribe_model_slots", "Slots of the live workers for the model", model, registry=r)
        self.model_busy_slots = Gauge(
            "jetscribe_model_busy_slots", "Slots transcribing with the model now", model, registry=r
        )
        self.model_queue_pending = Gauge(
            "jetscribe_model_queue_pending", "Jobs waiting for a worker of the model", model, registry=r
        )
        self.model_queue_in_flight = Gauge(
            "jetscribe_model_queue_in_flight",
            "Jobs of the model delivered to a worker, not yet acked",
            model,
            registry=r,
        )
        self.model_oldest_waiting = Gauge(
            "jetscribe_model_oldest_waiting_seconds",
            "How long the model's longest-waiting job has waited (0 when none waits)",
            model,
            registry=r,
        )
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
        self._per_model = (
            self.model_on_offer,
            self.model_workers,
            self.model_slots,
            self.model_busy_slots,
            self.model_queue_pending,
            self.model_queue_in_flight,
            self.model_oldest_waiting,
        )

    def observe(self, report: ModelReport) -> None:
        """Set the worker, model and queue gauges from one report; models no longer listed disappear."""
        self.workers_alive.set(len(report.workers))
        self.queue_pending.set(report.queue.pending)
        self.queue_in_flight.set(report.queue.in_flight)
        for gauge in self._per_model:
            gauge.clear()
        for model in report.models:
            self.model_on_offer.labels(model.name).set(int(model.on_offer))
            self.model_workers.labels(model.name).set(model.workers)
            self.model_slots.labels(model.name).set(model.slots)
            self.model_busy_slots.labels(model.name).set(model.busy_slots)
            self.model_queue_pending.labels(model.name).set(model.queue.pending)
            self.model_queue_in_flight.labels(model.name).set(model.queue.in_flight)
            self.model_oldest_waiting.labels(model.name).set(model.queue.oldest_waiting_s or 0.0)

    def observe_tenants(self, jobs: Mapping[JobStatus, Mapping[str, int]]) -> None:
        """Set each tenant's job gauges from counts by status, then tenant."""
        # A tenant whose jobs have all moved on must read 0, not keep its last count.
        self.tenant_jobs.clear()
        for status, counts in jobs.items():
            for tenant, count in counts.items():
                self.tenant_jobs.labels(tenant, status).set(count)

    def count_usage(self, record: JobRecord) -> None:
        """Add a job that has just finished to its tenant's usage."""
        if record.status == "done" and record.duration_secs:
            self.tenant_audio_seconds.labels(record.tenant).inc(record.duration_secs)
