"""Schemathesis against a running gateway's /openapi.json: no 5xx, and every answer matches the spec."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from jetscribe.embedded import EmbeddedNats
from tests.ports import free_port
from tests.worker.process import jetscribe_command

MAX_EXAMPLES: Final = 100
# What the API promises: never a 5xx, and every answer as documented. Not `positive_data_acceptance`:
# a schema-valid webhook_url may still be refused (422) for resolving to a private address.
CHECKS: Final = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
# Their documented 503 is the verdict itself (no worker runs beside this gateway): it must match the spec. The
# OpenAI-compatible routes wait for a worker's answer, so without one they answer 503 (`no_worker`) at once.
VERDICT_ROUTES: Final = frozenset(
    {"GET /health", "GET /readyz", "POST /v1/audio/transcriptions", "POST /v1/audio/translations"}
)
READY_TIMEOUT_S: Final = 60.0


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`jetscribe gateway` in its own process (schemathesis calls it synchronously), on its own nats-server."""
    root = tmp_path_factory.mktemp("fuzz")
    server = EmbeddedNats(root / "nats")
    server.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JETSCRIBE_")}
    env.update(
        JETSCRIBE_NATS_URL=server.url,
        JETSCRIBE_HOST="127.0.0.1",
        PORT=str(port),
        DATA_DIR=str(root / "data"),
        JETSCRIBE_MAX_UPLOAD_BYTES=str(1 << 20),
    )
    with (root / "gateway.log").open("wb") as log:
        process = subprocess.Popen([*jetscribe_command(), "gateway"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, root / "gateway.log")
        yield url
    finally:
        process.terminate()
        process.wait(30)
        server.stop()


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the gateway was not ready within {READY_TIMEOUT_S:.0f} s")


def checks_for(label: str) -> list[schemathesis.CheckFunction]:
    if label in VERDICT_ROUTES:
        return [c for c in CHECKS if c is not checks.not_a_server_error]
    return CHECKS


def operations(url: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_gateway_answers_every_generated_request_within_its_schema(gateway_url: str) -> None:
    # schemathesis' own pytest plugin does not load under pytest 9 (it reads Function._nodeid), so each
    # operation's strategy is driven by Hypothesis directly; the checks are the same.
    checked = []
    for operation in operations(gateway_url):

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=gateway_url, checks=checks_for(case.operation.label), timeout=10)

        check()
        checked.append(operation.label)
    assert "POST /jobs" in checked and "GET /jobs/{job_id}" in checked
    assert "POST /v1/audio/transcriptions" in checked and "GET /v1/models" in checked
