"""Every error is the JSON error body with a request id: an exception nobody expected is logged with its
traceback under that id and answered 500, never a text/plain page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from nats.aio.client import Client

from gateway.app import create_app
from jetscribe.config import Settings
from jetscribe.topology import Topology


class BrokenInvariantError(RuntimeError):
    """What a handler with a bug raises."""


@pytest.fixture
async def broken_route(settings: Settings, nc: Client, topology: Topology) -> AsyncIterator[str]:
    """The gateway's real application with one more route whose handler raises; yields the base URL."""
    app = create_app(settings, nc, topology)

    async def broken(request: web.Request) -> web.Response:
        raise BrokenInvariantError("a handler bug")

    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_unexpected_exception_is_a_json_500_with_a_request_id_logged_with_its_traceback(
    broken_route: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="gateway.app"):
        async with aiohttp.ClientSession() as http, http.get(f"{broken_route}/broken") as response:
            body = await response.json()

    assert response.status == 500
    assert response.content_type == "application/json"
    request_id = response.headers["X-Request-Id"]
    assert body["request_id"] == request_id and request_id in body["error"]
    assert "a handler bug" not in body["error"]
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is BrokenInvariantError


async def test_error_answers_carry_the_request_id_the_client_sent(broken_route: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{broken_route}/jobs/nosuchjob", headers={"X-Request-Id": "trace-42"}) as response,
    ):
        body = await response.json()

    assert response.status == 404
    assert response.headers["X-Request-Id"] == "trace-42" and body["request_id"] == "trace-42"
