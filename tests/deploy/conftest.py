"""Fixtures for the deployment checks: nats-server running the shipped configs, with the shipped users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.nats_process import ConfiguredNats

PASSWORDS = {"NATS_GATEWAY_PASSWORD": "gateway-test-password", "NATS_WORKER_PASSWORD": "worker-test-password"}
CREDENTIALS = {
    "gateway": PASSWORDS["NATS_GATEWAY_PASSWORD"],
    "worker": PASSWORDS["NATS_WORKER_PASSWORD"],
}


@pytest.fixture
def single_node(tmp_path: Path) -> Iterator[ConfiguredNats]:
    """nats-server running deploy/nats/nats.conf, as docker-compose runs it."""
    with ConfiguredNats("nats.conf", tmp_path / "nats", PASSWORDS) as server:
        yield server
