"""Worker heartbeats, written every few seconds to the `jetscribe_workers` KV bucket (with a TTL)."""

from datetime import datetime
from typing import Literal

import msgspec


class DeviceInfo(msgspec.Struct, kw_only=True):
    kind: Literal["cuda", "cpu"]
    name: str
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    utilization_percent: int | None = None
    driver: str | None = None


class WorkerHeartbeat(msgspec.Struct, kw_only=True):
    worker_id: str
    host: str
    pid: int
    model: str
    quantization: str | None = None
    """How the loaded model's weights are stored, from its GGML header: `f16`, `q8_0`, `q5_0`, `q5_1`, …
    (null from workers older than this field)."""
    device: DeviceInfo
    slots: int
    current_jobs: list[str]
    jobs_done: int
    started_at: datetime
    uptime_s: float
    sent_at: datetime
