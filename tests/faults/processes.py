"""The gateway run as its own process (`jetscribe gateway`), for tests that SIGKILL and restart it."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import aiohttp

from tests.ports import free_port
from tests.worker.process import jetscribe_command

READY_TIMEOUT_S: Final = 60.0
EXIT_TIMEOUT_S: Final = 30.0


class GatewayProcess:
    """`async with GatewayProcess(env, log) as gw:` starts the gateway and waits until `/readyz` answers 200.

    The port is chosen once, so a restarted gateway (`restart()`) answers on the same URL.
    """

    def __init__(self, env: dict[str, str], log_path: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self._env = {**env, "PORT": str(self.port), "JETSCRIBE_HOST": "127.0.0.1"}
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "not started"
        return self._process

    def _spawn(self) -> None:
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*jetscribe_command(), "gateway"], env=self._env, stdout=log, stderr=subprocess.STDOUT
            )

    async def start(self) -> None:
        self.starts += 1
        self._spawn()
        async with aiohttp.ClientSession() as session, asyncio.timeout(READY_TIMEOUT_S):
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the gateway exited with {self.process.returncode}:\n{self.log()}")
                try:
                    async with session.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        self.process.kill()
        await asyncio.to_thread(self.process.wait, EXIT_TIMEOUT_S)

    async def restart(self) -> None:
        await self.kill()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            await asyncio.to_thread(self._process.wait, EXIT_TIMEOUT_S)

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")


def gateway_env(worker_environment: dict[str, str], **extra: str) -> dict[str, str]:
    """A gateway's environment beside workers started with `worker_environment` (same NATS, same data dir)."""
    env = {k: v for k, v in worker_environment.items() if k not in ("WHISPER_MODEL_PATH",)}
    env.update(JETSCRIBE_ALLOW_PRIVATE_TARGETS="true")
    env.update(extra)
    return {**{k: v for k, v in os.environ.items() if k not in env and not k.startswith("JETSCRIBE_")}, **env}
