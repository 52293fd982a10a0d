"""The worker's heartbeat: who it is, what it runs on, the models it serves and what it is doing, written to the
workers KV bucket every few seconds. The bucket's TTL removes a worker that stops writing; a clean stop
deletes its key at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Final

import pynvml
from nats.errors import Error as NatsError
from nats.js.errors import NoStreamResponseError
from nats.js.kv import KeyValue

from jetscribe.stage.outcome import utcnow
from schemas import DeviceInfo, WorkerHeartbeat, encode
from schemas.workers import ServedModel

log = logging.getLogger(__name__)

MAX_INTERVAL_S: Final = 5.0
CPUINFO: Final = Path("/proc/cpuinfo")


def cpu_name() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def visible_gpu(cuda_visible_devices: str | None) -> int | str:
    """The NVML index or UUID of the GPU whisper.cpp uses: the first of CUDA_VISIBLE_DEVICES.

    NVML numbers every GPU on the machine, CUDA only the visible ones, so a worker pinned to GPU 3
    must report GPU 3, not GPU 0.
    """
    first = (cuda_visible_devices or "").split(",")[0].strip()
    if first.startswith(("GPU-", "MIG-")):
        return first
    return int(first) if first.isdigit() else 0


class DeviceProbe:
    """The GPU through NVML when there is one (and the worker uses it), else the CPU."""

    def __init__(self, use_gpu: bool) -> None:
        self._handle: object | None = None
        self._driver: str | None = None
        self._cpu = DeviceInfo(kind="cpu", name=f"{cpu_name()} ({os.cpu_count() or 1} cores)")
        if not use_gpu:
            return
        try:
            pynvml.nvmlInit()
            device = visible_gpu(os.environ.get("CUDA_VISIBLE_DEVICES"))
            if isinstance(device, str):
                self._handle = pynvml.nvmlDeviceGetHandleByUUID(device)
            else:
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(device)
            self._driver = _text(pynvml.nvmlSystemGetDriverVersion())
        except pynvml.NVMLError as exc:
            log.info("no GPU through NVML (%s): reporting the CPU", exc)
            self._handle = None

    def read(self) -> DeviceInfo:
        """Current device figures (blocking NVML calls: call off the loop)."""
        if self._handle is None:
            return self._cpu
        try:
            memory = pynvml.nvmlDeviceGetMemoryInfo(self._handle)
            utilization = pynvml.nvmlDeviceGetUtilizationRates(self._handle)
            return DeviceInfo(
                kind="cuda",
                name=_text(pynvml.nvmlDeviceGetName(self._handle)),
                memory_used_bytes=int(memory.used),
                memory_total_bytes=int(memory.total),
                utilization_percent=int(utilization.gpu),
                driver=self._driver,
            )
        except pynvml.NVMLError as exc:
            log.warning("reading the GPU through NVML failed: %s", exc)
            return DeviceInfo(kind="cuda", name="unknown GPU (NVML read failed)", driver=self._driver)

    def close(self) -> None:
        if self._handle is not None:
            pynvml.nvmlShutdown()
            self._handle = None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Heartbeat:
    """Writes a WorkerHeartbeat under the worker's id until stopped; `run()` is its task."""

    def __init__(
        self,
        bucket: KeyValue,
        *,
        worker_id: str,
        ttl_s: float,
        use_gpu: bool,
        models: Callable[[], list[ServedModel]],
        current_jobs: Callable[[], list[str]],
        jobs_done: Callable[[], int],
        reopen: Callable[[], Awaitable[KeyValue]],
    ) -> None:
        """`models`: the models served, with their slots now (at least one). `reopen`: creates the bucket again
        when it is gone (a single nats-server keeps it in memory, and a restart loses it)."""
        self._bucket = bucket
        self._reopen = reopen
        self._worker_id = worker_id
        # Well inside the TTL, so one lost write never makes a live worker vanish.
        self.interval_s = min(MAX_INTERVAL_S, ttl_s / 3)
        self._probe = DeviceProbe(use_gpu)
        self._models = models
        self._current_jobs = current_jobs
        self._jobs_done = jobs_done
        self._host = socket.gethostname()
        self._started_at: datetime = utcnow()
        self._started = time.monotonic()

    async def beat(self) -> WorkerHeartbeat:
        """Write one heartbeat now; returns what was written."""
        device = await asyncio.to_thread(self._probe.read)
        models = self._models()
        heartbeat = WorkerHeartbeat(
            worker_id=self._worker_id,
            host=self._host,
            pid=os.getpid(),
            model=models[0].name,
            quantization=models[0].quantization,
            models=models,
            device=device,
            slots=sum(model.slots for model in models),
            current_jobs=self._current_jobs(),
            jobs_done=self._jobs_done(),
            started_at=self._started_at,
            uptime_s=round(time.monotonic() - self._started, 1),
            sent_at=utcnow(),
        )
        await self._bucket.put(self._worker_id, encode(heartbeat))
        return heartbeat

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except NoStreamResponseError:
                log.warning("heartbeat not written: the workers bucket is gone (NATS restarted?); creating it again")
                with contextlib.suppress(NatsError, TimeoutError):
                    self._bucket = await self._reopen()
            except (NatsError, TimeoutError) as exc:
                log.warning("heartbeat not written: %r", exc)
            await asyncio.sleep(self.interval_s)

    async def remove(self) -> None:
        """Delete this worker's key (clean stop) and release NVML."""
        try:
            await self._bucket.delete(self._worker_id)
        except (NatsError, TimeoutError) as exc:
            log.warning("heartbeat key not deleted: %r", exc)
        finally:
            await asyncio.to_thread(self._probe.close)
