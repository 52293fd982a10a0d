"""The Python client: its event-stream parser by the HTML standard, and what the command line needs from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from client import ApiError, EventStreamParser, JetscribeClient, ServerUnreachableError
from gateway.main import GatewayServer
from tests.frontends.conftest import AUDIO, StartGateway
from tests.ports import free_port


def parse(*chunks: bytes) -> list[tuple[str, object, str | None]]:
    parser = EventStreamParser()
    return [(e.event, e.data, e.id) for chunk in chunks for e in parser.feed(chunk)]


def test_multi_line_data_joins_its_lines_with_a_newline() -> None:
    assert parse(b"data: first\ndata: second\n\n") == [("message", "first\nsecond", None)]


def test_multi_line_json_data_is_parsed_whole() -> None:
    assert parse(b'event: done\ndata: {"a":\ndata: 1}\n\n') == [("done", {"a": 1}, None)]


def test_cr_crlf_and_lf_all_end_lines_even_split_across_chunks() -> None:
    assert parse(b"data: a\r", b"\ndata: b\r\rdata: c\n\n") == [("message", "a\nb", None), ("message", "c", None)]


def test_comments_and_events_without_data_dispatch_nothing() -> None:
    assert parse(b": ping\n\nevent: progress\n\n") == []


def test_the_last_event_id_carries_over_and_one_space_after_the_colon_is_dropped() -> None:
    events = parse(b"id: 7\ndata:  two spaces\n\ndata:x\n\n")
    assert events == [("message", " two spaces", "7"), ("message", "x", "7")]


def test_a_character_split_across_chunks_survives() -> None:
    encoded = "data: naïve\n\n".encode()
    cut = encoded.index(b"\xc3") + 1
    assert parse(encoded[:cut], encoded[cut:]) == [("message", "naïve", None)]


async def test_upload_progress_reaches_the_whole_file(gateway: GatewayServer) -> None:
    seen: list[tuple[int, int]] = []
    path = AUDIO / "en1_stereo44k.wav"
    async with JetscribeClient(gateway.url) as client:
        await client.submit(path, on_upload=lambda sent, total: seen.append((sent, total)))

    size = path.stat().st_size
    assert seen[0] == (0, size) and seen[-1] == (size, size)
    assert [sent for sent, _ in seen] == sorted(sent for sent, _ in seen)


async def test_a_job_submitted_for_a_model_is_queued_for_it(gateway: GatewayServer) -> None:
    async with JetscribeClient(gateway.url) as client:
        job = await client.get(await client.submit(b"audio bytes", model="base"))

    assert (job.status, job.model) == ("queued", "base")


async def test_a_model_not_on_offer_is_an_api_error_naming_the_models_on_offer(gateway: GatewayServer) -> None:
    async with JetscribeClient(gateway.url) as client:
        with pytest.raises(ApiError) as caught:
            await client.submit_url("https://example.org/talk.mp3", model="large-v3")

    assert caught.value.status == 422
    assert "model 'large-v3' is not on offer" in str(caught.value) and "base, tiny.en" in str(caught.value)


async def test_jobs_pages_through_every_job_newest_first(gateway: GatewayServer) -> None:
    async with JetscribeClient(gateway.url) as client:
        ids = [await client.submit(b"audio bytes") for _ in range(5)]
        listed = [job.id async for job in client.jobs(page_size=2)]
        page = await client.list_jobs(status="queued", limit=3)

    assert listed == ids[::-1]
    assert [job.id for job in page.jobs] == ids[::-1][:3] and page.next_cursor is not None


async def test_health_without_a_worker_is_a_report_not_an_error(gateway: GatewayServer) -> None:
    async with JetscribeClient(gateway.url) as client:
        health = await client.health()

    assert health.status != "ok"
    assert health.workers == []


@pytest.mark.usefixtures("worker")
async def test_wait_reports_progress_and_returns_the_finished_job(gateway: GatewayServer) -> None:
    percents: list[int] = []
    async with JetscribeClient(gateway.url) as client:
        job = await client.wait(await client.submit(AUDIO / "en1.wav"), on_progress=percents.append)

    assert job.status == "done" and job.segments
    assert percents and percents == sorted(percents)


async def test_a_wrong_api_key_is_an_api_error_with_the_gateways_message(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(api_keys=("right",))
    async with JetscribeClient(gateway.url, api_key="wrong") as client:
        with pytest.raises(ApiError) as refused:
            await client.list_jobs()

    assert refused.value.status == 401
    assert "API key" in refused.value.message


async def test_no_server_at_the_address_is_server_unreachable(tmp_path: Path) -> None:
    async with JetscribeClient(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(ServerUnreachableError, match="no answer from jetscribe"):
            await client.get("any")
