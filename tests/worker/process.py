"""A worker run as its own process (`jetscribe worker`), for tests that kill or signal it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from nats.js.errors import NoKeysError

from jetscribe.config import Settings
from jetscribe.topology import Topology

READY_TIMEOUT_S: Final = 60.0
EXIT_TIMEOUT_S: Final = 30.0


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment `jetscribe worker` needs to join the tests' nats-server with tiny.en on one CPU thread."""
    assert settings.nats_url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("JETSCRIBE_")}
    env.update(
        JETSCRIBE_NATS_URL=settings.nats_url,
        WHISPER_MODEL=settings.whisper_model,
        WHISPER_MODEL_PATH=str(settings.whisper_model_path or ""),
        JETSCRIBE_MODELS_DIR=str(settings.model_dir),
        JETSCRIBE_ENGINE=settings.engine,
        DATA_DIR=str(settings.data_dir),
        JETSCRIBE_USE_GPU="false",
        JETSCRIBE_THREADS="1",
        JETSCRIBE_WORKER_HEARTBEAT_TTL_S=str(settings.worker_heartbeat_ttl_s),
        JETSCRIBE_ACK_WAIT_S=str(settings.ack_wait_s),
        JETSCRIBE_IN_PROGRESS_INTERVAL_S=str(settings.in_progress_interval_s),
        JETSCRIBE_MAX_DELIVER=str(settings.max_deliver),
        JETSCRIBE_SHUTDOWN_GRACE_S=str(settings.shutdown_grace_s),
        LOG_LEVEL="info",
    )
    env.update(extra)
    return env


def jetscribe_command() -> list[str]:
    """The `jetscribe` console script installed beside this Python."""
    return [str(Path(sys.executable).with_name("jetscribe"))]


class WorkerProcess:
    """`async with WorkerProcess(env, topology, log) as proc:` starts the worker and waits for its heartbeat."""

    def __init__(self, env: dict[str, str], topology: Topology, log_path: Path) -> None:
        self._env = env
        self._topology = topology
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.worker_id: str | None = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "not started"
        return self._process

    def _spawn(self) -> None:
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [*jetscribe_command(), "worker"], env=self._env, stdout=log, stderr=subprocess.STDOUT
            )

    async def __aenter__(self) -> Self:
        self._spawn()
        async with asyncio.timeout(READY_TIMEOUT_S):
            while self.worker_id is None:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the worker exited with {self.process.returncode}:\n{self.log()}")
                self.worker_id = await self._find_heartbeat()
                await asyncio.sleep(0.1)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
        await asyncio.to_thread(self.process.wait, EXIT_TIMEOUT_S)

    async def _find_heartbeat(self) -> str | None:
        try:
            keys = await self._topology.workers.keys()
        except NoKeysError:
            return None
        marker = f"-{self.process.pid}-"
        return next((k for k in keys if marker in k), None)

    def kill(self) -> None:
        self.process.kill()

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def exit_code(self) -> int:
        return await asyncio.to_thread(self.process.wait, EXIT_TIMEOUT_S)

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")
