"""GET /jobs/{id}/stream: snapshot, live events in order, resumption, fan-out, heartbeats, never hanging.

The live events here are published on the job's progress subject exactly as a worker publishes
them, so the stream's ordering rules can be driven precisely; test_flow.py runs a real worker.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
import msgspec
from nats.aio.client import Client

from gateway import keys
from gateway.main import GatewayServer
from jetscribe.embedded import EmbeddedNats
from jetscribe.jobstore import JobStore
from jetscribe.stage.progress import Stage
from schemas import ProgressEvent, Segment, SegmentEvent, encode, names
from tests.gateway.conftest import StartGateway, audio_form, read_events


async def submit(http: aiohttp.ClientSession) -> str:
    async with http.post("/jobs", data=audio_form()) as response:
        assert response.status == 202
        return (await response.json())["job_id"]


async def publish_progress(nc: Client, job_id: str, *pairs: tuple[int, int], stage: Stage = "transcribing") -> None:
    for seq, percent in pairs:
        event = ProgressEvent(job_id=job_id, seq=seq, percent=percent, stage=stage)
        await nc.publish(names.progress_subject(job_id), encode(event))
    await nc.flush()


async def cancel(http: aiohttp.ClientSession, job_id: str) -> None:
    async with http.delete(f"/jobs/{job_id}") as response:
        assert response.status == 204


async def test_stream_of_an_unknown_job_is_404_json(http: aiohttp.ClientSession, gateway: GatewayServer) -> None:
    async with http.get("/jobs/nosuchjob/stream") as response:
        body = await response.json()
    assert response.status == 404
    assert "nosuchjob" in body["error"]
    assert gateway.app[keys.HUB].subscribed_jobs == 0


async def test_stream_starts_with_the_current_state(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events, _ = await read_events(response, stop_after=1)
    assert events[0].event == "progress"
    assert events[0].data == {"type": "progress", "job_id": job_id, "seq": 0, "percent": 0, "stage": "queued"}
    assert events[0].id is None


async def test_stream_of_a_cancelled_job_ends_with_done_carrying_the_job(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        first, _ = await read_events(response, stop_after=1)
        await cancel(http, job_id)
        rest, _ = await read_events(response)
    assert [e.event for e in first + rest] == ["progress", "done"]
    done = rest[-1].data
    assert done["type"] == "done"
    assert done["job"]["id"] == job_id
    assert done["job"]["status"] == "cancelled"
    assert done["job"]["segments"] == []


async def test_late_client_of_a_finished_job_gets_done_at_once(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http)
    await cancel(http, job_id)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        events, _ = await read_events(response)
    assert [e.event for e in events] == ["done"]
    assert events[0].data["job"]["status"] == "cancelled"


async def test_progress_events_follow_the_snapshot_with_their_seq_as_id(
    http: aiohttp.ClientSession, nc: Client
) -> None:
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        await read_events(response, stop_after=1)
        await publish_progress(nc, job_id, (1, 10), (2, 25), (3, 40))
        live, _ = await read_events(response, stop_after=3)
        await cancel(http, job_id)
        rest, _ = await read_events(response)
    assert [(e.event, e.id, e.data["percent"]) for e in live] == [
        ("progress", "1", 10),
        ("progress", "2", 25),
        ("progress", "3", 40),
    ]
    assert live[0].data == {"type": "progress", "job_id": job_id, "seq": 1, "percent": 10, "stage": "transcribing"}
    assert [e.event for e in rest] == ["done"]


async def test_the_diarization_stage_counts_its_percent_from_zero_again(
    http: aiohttp.ClientSession, nc: Client
) -> None:
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        await read_events(response, stop_after=1)
        await publish_progress(nc, job_id, (1, 50), (2, 99))
        await publish_progress(nc, job_id, (1_000_001, 0), (1_000_002, 40), (1_000_003, 30), stage="diarizing")
        live, _ = await read_events(response, stop_after=4)
        await cancel(http, job_id)
    assert [(e.data["stage"], e.data["percent"]) for e in live] == [
        ("transcribing", 50),
        ("transcribing", 99),
        ("diarizing", 0),
        ("diarizing", 40),
    ]


async def test_duplicate_and_out_of_order_events_are_skipped(http: aiohttp.ClientSession, nc: Client) -> None:
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        await read_events(response, stop_after=1)
        await publish_progress(nc, job_id, (1, 10), (1, 10), (3, 30), (2, 20), (4, 35))
        await cancel(http, job_id)
        events, _ = await read_events(response)
    assert [(e.event, e.id) for e in events] == [
        ("progress", "1"),
        ("progress", "3"),
        ("progress", "4"),
        ("done", None),
    ]


async def test_last_event_id_resumes_after_that_event(http: aiohttp.ClientSession, nc: Client) -> None:
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream", headers={"Last-Event-ID": "2"}) as response:
        await publish_progress(nc, job_id, (1, 10), (2, 20), (3, 30), (4, 40))
        await cancel(http, job_id)
        events, _ = await read_events(response)
    assert [(e.event, e.id) for e in events] == [
        ("reset", None),
        ("progress", "3"),
        ("progress", "4"),
        ("done", None),
    ]


async def test_a_reconnect_gets_an_explicit_reset_with_the_current_state(
    http: aiohttp.ClientSession, nc: Client
) -> None:
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream", headers={"Last-Event-ID": "7"}) as response:
        events, _ = await read_events(response, stop_after=1)
    assert events[0].event == "reset"
    assert events[0].data["stage"] == "queued"


async def test_events_of_a_retried_attempt_reach_a_client_resuming_from_the_first(
    http: aiohttp.ClientSession, nc: Client
) -> None:
    # The worker numbers attempt 2's events from 1,000,001 (jetscribe.stage.progress.first_seq).
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream", headers={"Last-Event-ID": "40"}) as response:
        await publish_progress(nc, job_id, (1_000_001, 5), (1_000_002, 10))
        await cancel(http, job_id)
        events, _ = await read_events(response)
    assert [(e.event, e.id) for e in events] == [
        ("reset", None),
        ("progress", str(1_000_001)),
        ("progress", str(1_000_002)),
        ("done", None),
    ]


async def test_segment_events_are_sent_only_on_request(http: aiohttp.ClientSession, nc: Client) -> None:
    job_id = await submit(http)
    segment = SegmentEvent(job_id=job_id, seq=1, segment=Segment(index=0, start=0.0, end=1.5, text=" Hi."))
    async with (
        http.get(f"/jobs/{job_id}/stream?segments=true") as with_segments,
        http.get(f"/jobs/{job_id}/stream") as without,
    ):
        await read_events(with_segments, stop_after=1)
        await read_events(without, stop_after=1)
        await nc.publish(names.progress_subject(job_id), encode(segment))
        await publish_progress(nc, job_id, (2, 50))
        await cancel(http, job_id)
        got_segments, _ = await read_events(with_segments)
        got_plain, _ = await read_events(without)
    assert [e.event for e in got_segments] == ["segment", "progress", "done"]
    assert got_segments[0].data["segment"]["text"] == " Hi."
    assert [e.event for e in got_plain] == ["progress", "done"]


async def test_clients_of_one_job_share_one_subscription(
    http: aiohttp.ClientSession, gateway: GatewayServer, nc: Client
) -> None:
    job_id = await submit(http)
    hub = gateway.app[keys.HUB]
    streams = [await http.get(f"/jobs/{job_id}/stream") for _ in range(4)]
    try:
        for response in streams:
            await read_events(response, stop_after=1)
        progress_subs = [s for s in nc._subs.values() if s.subject == names.progress_subject(job_id)]
        assert len(progress_subs) == 1
        assert hub.subscribed_jobs == 1
        assert hub.followers(job_id) == 4
        await publish_progress(nc, job_id, (1, 50))
        await cancel(http, job_id)
        endings = [await read_events(response) for response in streams]
    finally:
        for response in streams:
            response.release()
    assert all([e.event for e in events] == ["progress", "done"] for events, _ in endings)
    assert hub.subscribed_jobs == 0
    assert not [s for s in nc._subs.values() if s.subject == names.progress_subject(job_id)]


async def test_idle_stream_gets_comment_heartbeats(start_gateway: StartGateway) -> None:
    _, http = await start_gateway(sse_heartbeat_s=0.1)
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        await read_events(response, stop_after=1)
        line = await asyncio.wait_for(response.content.readline(), 30)
    assert line.startswith(b": ping")


async def test_missed_terminal_event_still_ends_the_stream(start_gateway: StartGateway, job_store: JobStore) -> None:
    _, http = await start_gateway(sse_recheck_s=0.1)
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        await read_events(response, stop_after=1)
        # The job ends in KV with no terminal event published, as when that event is lost in an outage.
        await job_store.transition(
            job_id,
            lambda r: msgspec.structs.replace(
                r, status="failed", error="decoder crashed", completed_at=datetime.now(UTC)
            ),
        )
        events, _ = await read_events(response)
    assert [e.event for e in events] == ["done"]
    assert events[0].data["job"]["status"] == "failed"
    assert events[0].data["job"]["error"] == "decoder crashed"


async def test_stream_reports_progress_recorded_while_events_were_missed(
    start_gateway: StartGateway, job_store: JobStore
) -> None:
    _, http = await start_gateway(sse_recheck_s=0.1)
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        await read_events(response, stop_after=1)
        await job_store.transition(job_id, lambda r: msgspec.structs.replace(r, status="running", progress=60))
        events, _ = await read_events(response, stop_after=1)
    assert events[0].event == "progress"
    assert events[0].data["percent"] == 60


async def test_stream_survives_a_nats_restart(
    http: aiohttp.ClientSession, nc: Client, nats_server: EmbeddedNats
) -> None:
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        await read_events(response, stop_after=1)
        reconnects = nc.stats["reconnects"]
        await asyncio.to_thread(nats_server.stop)
        await asyncio.to_thread(nats_server.start)
        for _ in range(400):
            if nc.is_connected and nc.stats["reconnects"] > reconnects:
                break
            await asyncio.sleep(0.05)
        await publish_progress(nc, job_id, (1, 30))
        await cancel(http, job_id)
        events, _ = await read_events(response)
    assert [e.event for e in events if e.id is not None] == ["progress"]
    assert events[-1].event == "done"
    assert events[-1].data["job"]["status"] == "cancelled"
