"""Choosing a model over HTTP: the `model` field, refusals at submit, and `GET /models`, `/health` and `/metrics`
per model."""

from __future__ import annotations

from typing import Any

import aiohttp
from nats.js import JetStreamContext

from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import names
from tests.deploy.manifests import scalers
from tests.gateway.conftest import StartGateway, audio_form, object_names
from tests.gateway.test_submit import job_keys
from tests.models.conftest import StartWorker
from tests.models.test_routing import older_release_consumer
from tests.worker.jobs import terminal_event


async def post_job(http: aiohttp.ClientSession, **fields: str) -> tuple[int, dict[str, Any]]:
    async with http.post("/jobs", data=audio_form(**fields)) as response:
        return response.status, await response.json()


async def get(http: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    async with http.get(path) as response:
        return response.status, await response.json()


async def test_each_job_runs_with_the_model_it_names(
    start_worker: StartWorker, start_gateway: StartGateway, js: JetStreamContext, job_store: JobStore
) -> None:
    _, http = await start_gateway()
    async with start_worker("tiny.en") as tiny, start_worker("base") as base:
        status_base, named = await post_job(http, model="base", language="en")
        status_default, default = await post_job(http)
        events = [await terminal_event(js, body["job_id"]) for body in (named, default)]

    assert (status_base, status_default) == (202, 202)
    assert [(e.type, e.job.model) for e in events] == [("completed", "base"), ("completed", "tiny.en")]
    workers = [(await job_store.require(body["job_id"])).record.worker_id for body in (named, default)]
    assert workers == [base.worker_id, tiny.worker_id]


async def test_a_model_no_live_worker_serves_is_refused_listing_the_models_on_offer(
    start_worker: StartWorker, start_gateway: StartGateway, topology: Topology
) -> None:
    _, http = await start_gateway()
    async with start_worker("tiny.en"):
        status, body = await post_job(http, model="large-v3")

    assert status == 422
    assert body["error"] == (
        "model 'large-v3' is not on offer: no live worker serves it and it is not declared "
        "(JETSCRIBE_DECLARED_MODELS); models on offer: tiny.en"
    )
    assert body["detail"] == {"models": ["tiny.en"]}
    assert await object_names(topology) == []
    assert await job_keys(topology) == []


async def test_without_a_live_worker_a_job_for_the_default_model_is_refused(
    start_gateway: StartGateway, topology: Topology
) -> None:
    _, http = await start_gateway()
    status, body = await post_job(http)

    assert status == 422
    assert "model 'tiny.en' is not on offer" in body["error"]
    assert "none (no worker is running and no model is declared)" in body["error"]
    assert body["detail"] == {"models": []}
    assert await object_names(topology) == []
    assert await job_keys(topology) == []


async def test_a_declared_model_takes_jobs_while_no_worker_serves_it(
    start_gateway: StartGateway, js: JetStreamContext, job_store: JobStore
) -> None:
    _, http = await start_gateway(declared_models=("large-v3",))
    status, body = await post_job(http, model="large-v3")

    assert status == 202
    record = (await job_store.require(body["job_id"])).record
    assert (record.status, record.model) == ("queued", "large-v3")
    waiting = await js.get_last_msg(names.JOBS_STREAM, names.model_jobs_subject("large-v3"))
    assert waiting.headers is not None and waiting.headers[names.MSG_ID_HEADER] == body["job_id"]


async def test_an_english_only_model_refuses_another_language_at_submit(
    start_worker: StartWorker, start_gateway: StartGateway, topology: Topology
) -> None:
    _, http = await start_gateway()
    async with start_worker("tiny.en"):
        status, body = await post_job(http, language="de")

    assert status == 422
    assert body["error"] == (
        "model 'tiny.en' is English-only: it cannot transcribe language 'de': no multilingual model is on offer: "
        "leave `language` out to transcribe English"
    )
    assert await object_names(topology) == []


async def test_an_english_only_model_refuses_other_allowed_languages_at_submit(start_gateway: StartGateway) -> None:
    _, http = await start_gateway(declared_models=("base.en", "small"))
    status, body = await post_job(http, model="base.en", languages="en,de")

    assert status == 422
    assert body["error"].startswith("model 'base.en' is English-only: it cannot detect or transcribe de (`languages`)")


async def test_an_english_only_declared_model_is_known_by_its_name(start_gateway: StartGateway) -> None:
    _, http = await start_gateway(declared_models=("base.en", "small"))
    status, body = await post_job(http, model="base.en", language="fr")

    assert status == 422
    assert body["error"].startswith("model 'base.en' is English-only")
    assert "choose a multilingual model (small)" in body["error"]


async def test_a_model_name_that_cannot_be_routed_is_refused_with_the_rule(start_gateway: StartGateway) -> None:
    _, http = await start_gateway(declared_models=("tiny.en",))
    status, body = await post_job(http, model="tiny_.en")

    assert status == 422
    assert "model name 'tiny_.en' cannot be used" in body["error"]
    assert "no `__` and no `_` next to a `.`" in body["error"]


async def test_models_lists_each_model_with_its_workers_slots_and_queue(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    _, http = await start_gateway(declared_models=("base",))
    async with start_worker("tiny.en", worker_slots=2):
        assert (await post_job(http, model="base"))[0] == 202
        status, listed = await get(http, "/models")

    assert status == 200
    assert listed["default_model"] == "tiny.en"
    base, tiny = listed["models"]
    assert tiny == {
        "name": "tiny.en",
        "on_offer": True,
        "default": True,
        "declared": False,
        "multilingual": False,
        "quantization": "f16",
        "engines": ["whispercpp"],
        "workers": 1,
        "slots": 2,
        "busy_slots": 0,
        "queue": {"pending": 0, "in_flight": 0, "oldest_waiting_s": None},
    }
    assert (base["name"], base["on_offer"], base["declared"], base["multilingual"]) == ("base", True, True, True)
    assert (base["workers"], base["slots"], base["quantization"], base["engines"]) == (0, 0, None, [])
    assert base["queue"]["pending"] == 1 and base["queue"]["oldest_waiting_s"] >= 0


async def test_models_name_the_engine_and_compute_type_each_model_runs_on(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    _, http = await start_gateway()
    async with start_worker("tiny.en,base", engine="ctranslate2", model_engines=("base=whispercpp",)):
        status, listed = await get(http, "/models")

    assert status == 200
    assert {m["name"]: m["engines"] for m in listed["models"]} == {
        "base": ["whispercpp"],
        "tiny.en": ["ctranslate2/int8"],
    }


async def test_health_shows_each_model_and_names_jobs_that_no_worker_will_run(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    _, declaring = await start_gateway(declared_models=("base",))
    _, http = await start_gateway()
    async with start_worker("tiny.en") as worker:
        assert (await post_job(declaring, model="base"))[0] == 202
        status, health = await get(http, "/health")

    assert status == 503
    assert [w["worker_id"] for w in health["workers"]] == [worker.worker_id]
    assert [(m["name"], m["on_offer"], m["queue"]["pending"]) for m in health["models"]] == [
        ("base", False, 1),
        ("tiny.en", True, 0),
    ]
    assert health["problems"] == [
        "1 job(s) wait for model 'base', which no live worker serves and which is not declared"
    ]
    assert health["queue"]["pending"] == 1


async def test_health_says_when_the_default_model_is_not_on_offer(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    _, http = await start_gateway(default_model="small")
    async with start_worker("tiny.en"):
        status, health = await get(http, "/health")

    assert status == 503
    assert health["problems"] == [
        "the default model 'small' is not on offer (no live worker serves it and it is not declared): jobs that "
        "name no model are refused"
    ]


async def test_metrics_give_workers_slots_and_queue_per_model(
    start_worker: StartWorker, start_gateway: StartGateway
) -> None:
    _, http = await start_gateway(declared_models=("base",))
    async with start_worker("tiny.en"):
        assert (await post_job(http, model="base"))[0] == 202
        async with http.get("/metrics") as response:
            text = await response.text()

    for line in (
        'jetscribe_model_on_offer{model="tiny.en"} 1.0',
        'jetscribe_model_workers{model="tiny.en"} 1.0',
        'jetscribe_model_slots{model="tiny.en"} 1.0',
        'jetscribe_model_busy_slots{model="tiny.en"} 0.0',
        'jetscribe_model_queue_pending{model="tiny.en"} 0.0',
        'jetscribe_model_on_offer{model="base"} 1.0',
        'jetscribe_model_workers{model="base"} 0.0',
        'jetscribe_model_queue_pending{model="base"} 1.0',
        "jetscribe_queue_pending 1.0",
        "jetscribe_workers_alive 1.0",
    ):
        assert line in text
    assert 'jetscribe_model_oldest_waiting_seconds{model="base"}' in text


async def test_metrics_sum_every_tenants_waiting_jobs_in_the_series_the_autoscaler_reads(
    start_gateway: StartGateway, js: JetStreamContext, topology: Topology
) -> None:
    _, http = await start_gateway(declared_models=("base",))
    for n, tenant in enumerate(("tenant-a", "tenant-a", "tenant-b")):
        await js.publish(names.model_jobs_subject("base", tenant), b"{}", headers={names.MSG_ID_HEADER: f"job-{n}"})
    async with http.get("/metrics") as response:
        series = dict(line.rsplit(" ", 1) for line in (await response.text()).splitlines() if line[:1] != "#")

    read = {metric: float(series[trigger["valueLocation"]]) for metric, trigger in scalers().items()}
    assert read == {"jetscribe_model_queue_pending": 3.0, "jetscribe_model_queue_in_flight": 0.0}


async def test_a_gateway_leaves_the_consumer_of_older_workers_alone_and_creates_none_beside_it(
    start_gateway: StartGateway, js: JetStreamContext, topology: Topology
) -> None:
    await js.add_consumer(names.JOBS_STREAM, older_release_consumer())
    await start_gateway(declared_models=("base",))

    consumers = {info.name for info in await js.consumers_info(names.JOBS_STREAM)}
    assert consumers == {names.LEGACY_WORKERS_CONSUMER}
