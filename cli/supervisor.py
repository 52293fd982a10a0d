"""The worker of `jetscribe serve`, run as a child process and restarted when it dies.

A worker holds decoded audio and a Whisper model; if one submission ever makes it run out of memory,
the kernel kills that process, not the gateway and the embedded nats-server beside it. The child is
`jetscribe worker` on the same settings and the serve's NATS URL. It dies with its parent
(`PR_SET_PDEATHSIG` on Linux: SIGTERM, so it hands its jobs back). A child that exits while serve
is not stopping is started again after a back-off that doubles from `FIRST_BACKOFF_S` to
`MAX_BACKOFF_S` and starts over once a child has run for `STABLE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

from jetscribe.config import Settings, env_name

log = logging.getLogger(__name__)

FIRST_BACKOFF_S: Final = 1.0
MAX_BACKOFF_S: Final = 60.0
STABLE_S: Final = 60.0
ABORT_WAIT_S: Final = 30.0
"""What the worker allows aborted jobs to wind down after its grace period (worker.service.ABORT_WAIT_S)."""
EXIT_MARGIN_S: Final = 15.0
PR_SET_PDEATHSIG: Final = 1


def _death_signal() -> Callable[[], None] | None:
    """A `preexec_fn` giving the child SIGTERM when its parent dies (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_death_signal


class WorkerSupervisor:
    """Runs `jetscribe worker` against `nats_url` until the context exits; an async context manager.

    Once `stopping` (serve's stop signal) is set a dead child is not replaced: a terminal's Ctrl-C reaches
    the child too, and it may exit before serve gets to stop it.
    """

    def __init__(self, settings: Settings, nats_url: str, stopping: asyncio.Event, *, command: str = "worker") -> None:
        """`command`: the `jetscribe` command the child runs, `worker` or `diarizer`."""
        self._command = command
        self._settings = settings
        self._nats_url = nats_url
        self._serve_stopping = stopping
        self._stopping = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError("this WorkerSupervisor is already running")
        self._task = asyncio.create_task(self._supervise())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env[env_name("nats_url")] = self._nats_url
        # The child authenticates as serve does. Credentials go in its environment (readable only by this user,
        # /proc/<pid>/environ), never on its command line, which `ps` shows to everyone.
        for field in ("nats_user", "nats_password", "nats_token", "nats_creds"):
            value = getattr(self._settings, field)
            if value is None:
                env.pop(env_name(field), None)
            else:
                env[env_name(field)] = str(value)
        return env

    async def _supervise(self) -> None:
        backoff_s = FIRST_BACKOFF_S
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", self._command, env=self._environment(), stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=_death_signal(),
            )  # fmt: skip
            self.starts += 1
            log.info("%s process %d started", self._command, self._process.pid)
            code = await self._wait(self._process)
            if self._stopping.is_set() or self._serve_stopping.is_set():
                log.info("worker process %d exited with status %d", self._process.pid, code)
                return
            if loop.time() - started >= STABLE_S:
                backoff_s = FIRST_BACKOFF_S
            log.error(
                "worker process %d died (status %d); starting another in %.0f s", self._process.pid, code, backoff_s
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff_s)
            backoff_s = min(backoff_s * 2, MAX_BACKOFF_S)

    async def _wait(self, process: asyncio.subprocess.Process) -> int:
        """The child's exit status; once serve stops, it gets SIGTERM and time to hand its jobs back, then SIGKILL."""
        exited = asyncio.ensure_future(process.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((exited, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not exited.done():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            limit_s = self._settings.shutdown_grace_s + ABORT_WAIT_S + EXIT_MARGIN_S
            try:
                await asyncio.wait_for(asyncio.shield(exited), limit_s)
            except TimeoutError:
                log.error("worker process %d did not stop within %.0f s: killing it", process.pid, limit_s)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        return await exited
