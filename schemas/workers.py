"""Worker heartbeats, written every few seconds to the `jetscribe_workers` KV bucket (with a TTL); the diarization
workers' to `jetscribe_diarizers`."""

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


class ServedModel(msgspec.Struct, kw_only=True):
    """One model a worker serves, with the slots (each its own copy of the model) it has for it."""

    name: str
    multilingual: bool
    """False for English-only models (`tiny.en`, `base.en`, …), which transcribe English alone."""
    quantization: str
    """How the model's weights are held: from its GGML header with whisper.cpp (`f16`, `q8_0`, `q5_0`, `q5_1`, …),
    the weight type of the compute type with CTranslate2 (`int8`, `f16`, `f32`)."""
    engine: Literal["whispercpp", "ctranslate2"] = "whispercpp"
    """The Whisper engine running it (`JETSCRIBE_ENGINE`); `whispercpp` from workers older than this field."""
    compute_type: str | None = None
    """What CTranslate2 computes in (`int8`, `int8_float16`, `float16`, `float32`, …); null with whisper.cpp."""
    batch_size: int = 1
    """30 s chunks of a job decoded in one batched forward pass (CTranslate2); 1 decodes them one by one."""
    slots: int
    busy_slots: int
    """Slots whose model is transcribing a job right now."""
    jobs_done: int
    """Jobs this worker has completed (status done) with this model."""


class WorkerHeartbeat(msgspec.Struct, kw_only=True):
    worker_id: str
    host: str
    pid: int
    model: str
    """The first model of `models` (kept for readers older than `models`)."""
    quantization: str | None = None
    """How the first model's weights are stored, from its GGML header: `f16`, `q8_0`, `q5_0`, `q5_1`, …
    (null from workers older than this field)."""
    models: list[ServedModel] = []
    """Every model this worker serves; empty from workers older than per-model routing, which serve none of
    today's model subjects."""
    device: DeviceInfo
    slots: int
    """Slots of all its models together."""
    current_jobs: list[str]
    jobs_done: int
    started_at: datetime
    uptime_s: float
    sent_at: datetime


class DiarizerHeartbeat(msgspec.Struct, kw_only=True):
    """A diarization worker (`jetscribe diarizer`), written every few seconds to the `jetscribe_diarizers` KV bucket
    under its worker id; the bucket's TTL (`worker_heartbeat_ttl_s`) removes one that stops writing."""

    worker_id: str
    host: str
    pid: int
    encoder: str
    """The speaker encoder it embeds voices with (`diarizer.SpeakerEncoder.name`)."""
    current_jobs: list[str]
    """The job it is diarizing now (one at a time), if any."""
    jobs_done: int
    """Jobs it has completed (status done)."""
    started_at: datetime
    uptime_s: float
    sent_at: datetime
