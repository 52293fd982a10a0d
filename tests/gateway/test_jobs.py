"""GET /jobs, GET /jobs/{id}, DELETE /jobs/{id} and the transcript route's refusals, without a worker."""

from __future__ import annotations

import aiohttp
import pytest
from nats.js import JetStreamContext

from jetscribe.topology import Topology
from schemas import names
from schemas.codec import decode_terminal_event
from tests.gateway.conftest import audio_form, object_names


async def submit(http: aiohttp.ClientSession, **fields: str) -> str:
    async with http.post("/jobs", data=audio_form(**fields)) as response:
        assert response.status == 202
        return (await response.json())["job_id"]


async def get_json(http: aiohttp.ClientSession, path: str) -> tuple[int, dict]:
    async with http.get(path) as response:
        return response.status, await response.json()


async def test_unknown_job_is_404_with_a_json_error(http: aiohttp.ClientSession) -> None:
    status, body = await get_json(http, "/jobs/nosuchjob")
    assert status == 404
    assert "'nosuchjob'" in body["error"]


async def test_malformed_job_id_is_404_with_a_json_error(http: aiohttp.ClientSession) -> None:
    status, body = await get_json(http, "/jobs/has.dots")
    assert status == 404
    assert "/jobs/has.dots" in body["error"]


async def test_unknown_route_is_404_with_a_json_error(http: aiohttp.ClientSession) -> None:
    status, body = await get_json(http, "/nowhere")
    assert status == 404
    assert "/docs" in body["error"]


async def test_wrong_method_is_405_with_a_json_error(http: aiohttp.ClientSession) -> None:
    async with http.put("/jobs") as response:
        body = await response.json()
    assert response.status == 405
    assert "PUT" in body["error"]


async def test_job_json_has_every_field_of_the_contract(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http, language="en")
    status, job = await get_json(http, f"/jobs/{job_id}")
    assert status == 200
    contract = {"id", "status", "language", "task", "duration_secs", "progress", "segments", "error"}
    assert contract | {"created_at", "completed_at"} <= set(job)
    assert job["id"] == job_id


async def test_job_list_is_newest_first(http: aiohttp.ClientSession) -> None:
    ids = [await submit(http) for _ in range(3)]
    status, body = await get_json(http, "/jobs")
    assert status == 200
    assert [j["id"] for j in body["jobs"]] == ids[::-1]
    assert body["next_cursor"] is None


async def test_job_list_pages_with_the_cursor(http: aiohttp.ClientSession) -> None:
    ids = [await submit(http) for _ in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        _, body = await get_json(http, f"/jobs{query}")
        seen += [j["id"] for j in body["jobs"]]
        cursor = body["next_cursor"]
    assert seen == ids[::-1]
    assert cursor is None


async def test_job_list_filters_by_status(http: aiohttp.ClientSession) -> None:
    kept = await submit(http)
    cancelled = await submit(http)
    async with http.delete(f"/jobs/{cancelled}") as response:
        assert response.status == 204
    _, queued = await get_json(http, "/jobs?status=queued")
    _, ended = await get_json(http, "/jobs?status=cancelled")
    assert [j["id"] for j in queued["jobs"]] == [kept]
    assert [j["id"] for j in ended["jobs"]] == [cancelled]


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("?status=finished", 422, "queued, running, diarizing, done, failed, cancelled"),
        ("?limit=0", 422, "1 to 500"),
        ("?limit=many", 422, "1 to 500"),
        ("?cursor=%%%", 400, "next_cursor"),
    ],
)
async def test_job_list_refuses_bad_parameters(
    http: aiohttp.ClientSession, query: str, status: int, words: str
) -> None:
    got, body = await get_json(http, f"/jobs{query}")
    assert got == status
    assert words in body["error"]


async def test_cancelling_a_queued_job_ends_it_cancelled(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http)
    async with http.delete(f"/jobs/{job_id}") as response:
        assert response.status == 204
    _, job = await get_json(http, f"/jobs/{job_id}")
    assert job["status"] == "cancelled"
    assert job["completed_at"] is not None


async def test_cancelling_a_queued_job_publishes_a_cancelled_event(
    http: aiohttp.ClientSession, js: JetStreamContext
) -> None:
    job_id = await submit(http)
    async with http.delete(f"/jobs/{job_id}"):
        pass
    msg = await js.get_last_msg(names.EVENTS_STREAM, names.event_subject("cancelled", job_id))
    assert msg.headers is not None and msg.headers[names.MSG_ID_HEADER] == f"{job_id}:cancelled"
    event = decode_terminal_event(msg.data)
    assert event.type == "cancelled"
    assert event.job.id == job_id
    assert event.job.status == "cancelled"


async def test_cancelling_a_queued_job_removes_its_audio(http: aiohttp.ClientSession, topology: Topology) -> None:
    job_id = await submit(http)
    async with http.delete(f"/jobs/{job_id}"):
        pass
    assert job_id not in await object_names(topology)


async def test_cancelling_a_finished_job_is_a_conflict(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http)
    async with http.delete(f"/jobs/{job_id}"):
        pass
    async with http.delete(f"/jobs/{job_id}") as response:
        body = await response.json()
    assert response.status == 409
    assert "cancelled" in body["error"]


async def test_cancelling_an_unknown_job_is_404(http: aiohttp.ClientSession) -> None:
    async with http.delete("/jobs/nosuchjob") as response:
        body = await response.json()
    assert response.status == 404
    assert "nosuchjob" in body["error"]


async def test_transcript_of_an_unfinished_job_is_a_conflict(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http)
    status, body = await get_json(http, f"/jobs/{job_id}/transcript?format=srt")
    assert status == 409
    assert "queued" in body["error"]
    assert "done" in body["error"]


async def test_transcript_in_an_unknown_format_is_refused(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http)
    status, body = await get_json(http, f"/jobs/{job_id}/transcript?format=docx")
    assert status == 422
    assert "txt, srt, vtt, tsv, json" in body["error"]


@pytest.mark.parametrize(("query", "name"), [("max_line_chars=5", "max_line_chars"), ("max_cue_s=abc", "max_cue_s")])
async def test_a_subtitle_layout_out_of_range_is_refused_naming_it(
    query: str, name: str, http: aiohttp.ClientSession
) -> None:
    job_id = await submit(http)
    status, body = await get_json(http, f"/jobs/{job_id}/transcript?format=vtt&{query}")
    assert status == 422
    assert f"`{name}`" in body["error"]


async def test_api_keys_guard_the_jobs_routes(start_gateway) -> None:  # type: ignore[no-untyped-def]
    _, http = await start_gateway(api_keys=("s3cret",))
    async with http.get("/jobs") as response:
        assert response.status == 401
        assert "Bearer" in (await response.json())["error"]
    async with http.get("/jobs", headers={"Authorization": "Bearer s3cret"}) as response:
        assert response.status == 200
    async with http.get("/livez") as response:
        assert response.status == 200
