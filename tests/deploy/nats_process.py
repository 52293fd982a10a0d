"""nats-server processes started from the shipped configs in `deploy/nats/`, on loopback, for the tests.

The config directory is copied as is; only the JetStream `store_dir` (a container path) is pointed at a temporary
directory, and ports and routes are given on the command line, which overrides the file.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, Self

from jetscribe.embedded import nats_server_binary

DEPLOY_NATS: Final = Path(__file__).resolve().parents[2] / "deploy" / "nats"
CONTAINER_STORE_DIR: Final = "store_dir: /data"
READY_TIMEOUT_S: Final = 30.0
_CLIENT_PORT: Final = re.compile(r"Listening for client connections on [^\s]+:(\d+)")
_MONITOR_PORT: Final = re.compile(r"Starting http monitor on [^\s]+:(\d+)")

# Looked up once, at import: the lookup stats the file system, and some tests start servers from async code.
NATS_SERVER: Final = nats_server_binary()


def config_test(config: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`nats-server -t -c CONFIG`: parse and validate the configuration, start nothing."""
    return subprocess.run(
        [nats_server_binary(), "-t", "-c", str(config)], env=dict(env), capture_output=True, text=True, timeout=30
    )


class ConfiguredNats:
    """One nats-server running `deploy/nats/<config_name>` with its store under `workdir`."""

    def __init__(self, config_name: str, workdir: Path, env: Mapping[str, str], extra_args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.extra_args = list(extra_args)
        self.config = self._copy_config(config_name)
        self.client_port = 0
        self.monitor_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "nats-server.log"

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    NATS_SERVER,
                    "-c",
                    str(self.config),
                    "-a",
                    "127.0.0.1",
                    "-p",
                    "-1",
                    "-m",
                    "-1",
                    *self.extra_args,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            client, monitor = _CLIENT_PORT.search(text), _MONITOR_PORT.search(text)
            if "Server is ready" in text and client and monitor:
                self.client_port, self.monitor_port = int(client.group(1)), int(monitor.group(1))
                return
            if self._process.poll() is not None:
                raise RuntimeError(f"nats-server exited at start-up:\n{text[-3000:]}")
            time.sleep(0.05)
        self.stop()
        log = self.log_path.read_text()[-3000:]
        raise RuntimeError(f"nats-server not ready within {READY_TIMEOUT_S:.0f} s:\n{log}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def monitor(self, path: str) -> tuple[int, dict[str, object]]:
        """GET a monitoring endpoint (`/jsz?...`, `/varz`, `/healthz`): status and JSON body."""
        url = f"http://127.0.0.1:{self.monitor_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def wait_healthy(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until /healthz says JetStream is usable (in a cluster: routes up and a meta leader elected)."""
        deadline = time.monotonic() + timeout_s
        while self.monitor("/healthz")[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nats-server not healthy within {timeout_s:.0f} s:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _copy_config(self, config_name: str) -> Path:
        store = self.workdir / "store"
        store.mkdir(parents=True, exist_ok=True)
        for conf in DEPLOY_NATS.glob("*.conf"):
            text = conf.read_text()
            if conf.name == config_name:
                if CONTAINER_STORE_DIR not in text:
                    raise AssertionError(f"{conf} no longer has `{CONTAINER_STORE_DIR}`; update this helper")
                text = text.replace(CONTAINER_STORE_DIR, f'store_dir: "{store}"')
            (self.workdir / conf.name).write_text(text)
        return self.workdir / config_name
