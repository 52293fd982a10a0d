"""Jobs reach only workers that serve their model: per-model subjects and per-tenant consumers, the router behind
`jetscribe.jobs.submit`, and what happens to a job no worker can run (NATS-native producers)."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RawStreamMsg
from nats.js.errors import NotFoundError

from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import DecodeOptions, JobMessage, encode, names
from schemas.codec import decode_job_message
from tests.models.conftest import StartWorker, record_when
from tests.worker.jobs import AUDIO, new_job_id, publish_job, terminal_event, upload


async def job_for(topology: Topology, audio: str, *, model: str | None, language: str | None = None) -> JobMessage:
    return JobMessage(
        job_id=new_job_id(),
        audio_object=await upload(topology, AUDIO / audio),
        model=model,
        language=language,
        options=DecodeOptions(beam_size=1),
    )


async def publish_on_submit(js: JetStreamContext, message: JobMessage) -> None:
    """As a producer older than per-model subjects does: on `jetscribe.jobs.submit`, whatever the model."""
    await js.publish(names.JOBS_SUBJECT, encode(message), headers={names.MSG_ID_HEADER: message.job_id})


def older_release_consumer() -> ConsumerConfig:
    """The one unfiltered consumer that every worker shared before jobs were routed per model."""
    return ConsumerConfig(
        durable_name=names.LEGACY_WORKERS_CONSUMER, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL
    )


def per_model_release_consumer(model: str) -> ConsumerConfig:
    """The one consumer of a model that its workers shared before fair sharing between tenants."""
    return ConsumerConfig(
        durable_name=names.legacy_model_consumer(model),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject=f"jetscribe.jobs.{names.model_token(model)}.>",
    )


async def last_message(js: JetStreamContext, subject: str, within_s: float = 10) -> RawStreamMsg:
    """The last message on `subject`, waiting for one to arrive."""
    async with asyncio.timeout(within_s):
        while True:
            try:
                return await js.get_last_msg(names.JOBS_STREAM, subject)
            except NotFoundError:
                await asyncio.sleep(0.1)


async def test_jobs_run_only_on_the_workers_that_serve_their_model(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker("tiny.en") as tiny, start_worker("base") as base:
        tiny_jobs = [await job_for(topology, f"en{n}.wav", model="tiny.en") for n in (1, 2)]
        base_job = await job_for(topology, "en3.wav", model="base")
        for message in [*tiny_jobs, base_job]:
            await publish_job(js, message)
        events = {m.job_id: await terminal_event(js, m.job_id) for m in [*tiny_jobs, base_job]}
        counters = {w.worker_id: {m.name: m.jobs_done for m in w.models} for w in (tiny, base)}

    records = {job_id: (await job_store.require(job_id)).record for job_id in events}
    assert {e.type for e in events.values()} == {"completed"}
    ran = {job_id: (record.model, record.worker_id) for job_id, record in records.items()}
    assert [ran[m.job_id] for m in tiny_jobs] == [("tiny.en", tiny.worker_id)] * 2
    assert ran[base_job.job_id] == ("base", base.worker_id)
    assert events[base_job.job_id].job.model == "base"
    assert counters == {tiny.worker_id: {"tiny.en": 2}, base.worker_id: {"base": 1}}


async def test_a_worker_serves_several_models_each_with_its_own_slots(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker("tiny.en,base") as worker:
        heartbeat = worker.models
        english = await job_for(topology, "en1.wav", model="tiny.en")
        german = await job_for(topology, "de1.wav", model="base", language="de")
        for message in (english, german):
            await publish_job(js, message)
        events = [await terminal_event(js, m.job_id) for m in (english, german)]
        done = {m.name: m.jobs_done for m in worker.models}

    assert [(m.name, m.multilingual, m.quantization, m.slots) for m in heartbeat] == [
        ("tiny.en", False, "f16", 1),
        ("base", True, "f16", 1),
    ]
    assert [(e.type, e.job.model) for e in events] == [("completed", "tiny.en"), ("completed", "base")]
    assert done == {"tiny.en": 1, "base": 1}
    transcript = await job_store.get_transcript(events[1].transcript_object or "")
    assert "guten morgen" in " ".join(s.text for s in transcript).lower()


async def test_a_job_on_the_submit_subject_without_a_model_runs_with_the_default_model(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology
) -> None:
    async with start_worker("tiny.en"):
        message = await job_for(topology, "en1.wav", model=None)
        await publish_job(js, message)
        event = await terminal_event(js, message.job_id)

    assert (event.type, event.job.model) == ("completed", "tiny.en")


async def test_a_job_on_the_submit_subject_is_routed_to_the_model_it_names(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker("tiny.en", declared_models=("base",)):
        message = await job_for(topology, "en1.wav", model="base")
        await publish_on_submit(js, message)
        routed = await last_message(js, names.model_jobs_subject("base"))
        record = (await job_store.require(message.job_id)).record
        left = await js.stream_info(names.JOBS_STREAM, subjects_filter=names.JOBS_SUBJECT)

    assert decode_job_message(routed.data or b"") == message
    assert routed.headers is not None and routed.headers[names.MSG_ID_HEADER] == f"{message.job_id}.routed.1"
    assert (record.status, record.model, record.worker_id) == ("queued", "base", None)
    assert not left.state.subjects


async def test_a_job_for_a_model_no_worker_serves_fails_naming_the_models_on_offer(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology
) -> None:
    async with start_worker("tiny.en"):
        message = await job_for(topology, "en1.wav", model="large-v3")
        await publish_on_submit(js, message)
        event = await terminal_event(js, message.job_id)

    assert event.type == "failed" and event.job.model == "large-v3"
    assert event.job.error == (
        "model 'large-v3' is not on offer: no live worker serves it and it is not declared "
        "(JETSCRIBE_DECLARED_MODELS); models on offer: tiny.en"
    )
    assert (await js.stream_info(names.JOBS_STREAM)).state.messages == 0


async def test_a_job_in_a_language_an_english_only_model_cannot_do_fails_when_routed(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology
) -> None:
    async with start_worker("tiny.en"):
        message = await job_for(topology, "de1.wav", model=None, language="de")
        await publish_job(js, message)
        event = await terminal_event(js, message.job_id)

    assert event.type == "failed"
    assert event.job.error == (
        "model 'tiny.en' is English-only: it cannot transcribe language 'de': no multilingual model is on offer: "
        "leave `language` out to transcribe English"
    )


async def test_a_worker_refuses_a_language_its_model_cannot_do_though_published_on_its_subject(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology
) -> None:
    async with start_worker("tiny.en") as worker:
        message = await job_for(topology, "de1.wav", model="tiny.en", language="de")
        await publish_job(js, message)
        event = await terminal_event(js, message.job_id)

    assert event.type == "failed" and event.job.error is not None
    assert "model 'tiny.en' is English-only" in event.job.error and "'de'" in event.job.error
    assert event.job.model == "tiny.en" and worker.jobs_done == 0


async def test_a_job_published_on_another_models_subject_fails_instead_of_running_with_the_wrong_model(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology
) -> None:
    async with start_worker("tiny.en") as worker:
        message = await job_for(topology, "en1.wav", model="base")
        subject = names.model_jobs_subject("tiny.en")
        await js.publish(subject, encode(message), headers={names.MSG_ID_HEADER: message.job_id})
        event = await terminal_event(js, message.job_id)

    assert event.type == "failed"
    assert event.job.error == (
        f"the job asks for model 'base' but was published on {subject}, the subject of model 'tiny.en': publish it "
        f"on {names.model_jobs_subject('base')} or on {names.JOBS_SUBJECT}"
    )
    assert worker.jobs_done == 0


async def test_queued_jobs_of_a_declared_model_start_when_a_worker_for_it_joins(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker("tiny.en", declared_models=("base",)):
        message = await job_for(topology, "en2.wav", model="base")
        await publish_on_submit(js, message)
        waiting = await record_when(job_store, message.job_id, lambda r: r.model == "base")
        async with start_worker("base", declared_models=("base",)) as base:
            event = await terminal_event(js, message.job_id)

    assert (waiting.status, waiting.worker_id) == ("queued", None)
    assert (event.type, event.job.model) == ("completed", "base")
    assert (await job_store.require(message.job_id)).record.worker_id == base.worker_id


async def test_a_job_of_a_model_whose_name_cannot_be_routed_is_dead_lettered(
    start_worker: StartWorker, js: JetStreamContext
) -> None:
    async with start_worker("tiny.en"):
        await js.publish(names.JOBS_SUBJECT, b'{"job_id": "odd-model", "audio_object": "a.wav", "model": "tiny__en"}')
        event = await terminal_event(js, "odd-model")

    assert event.type == "failed" and event.job.error is not None
    assert event.job.error.startswith("the job message is invalid:") and "no `__`" in event.job.error


async def test_a_worker_retires_the_consumer_of_older_releases_and_runs_the_jobs_waiting_in_it(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology
) -> None:
    await js.add_consumer(names.JOBS_STREAM, older_release_consumer())
    message = await job_for(topology, "en1.wav", model=None)
    await publish_on_submit(js, message)
    async with start_worker("tiny.en"):
        event = await terminal_event(js, message.job_id)
        consumers = {info.name for info in await js.consumers_info(names.JOBS_STREAM)}

    assert (event.type, event.job.model) == ("completed", "tiny.en")
    assert consumers == {names.ROUTER_CONSUMER, names.tenant_consumer("tiny.en", names.DEFAULT_TENANT)}


async def test_a_worker_retires_its_models_consumer_of_releases_before_fair_sharing_and_runs_the_jobs_in_it(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology
) -> None:
    await js.add_consumer(names.JOBS_STREAM, per_model_release_consumer("tiny.en"))
    message = await job_for(topology, "en1.wav", model="tiny.en")
    await publish_job(js, message)
    async with start_worker("tiny.en"):
        event = await terminal_event(js, message.job_id)
        consumers = {info.name for info in await js.consumers_info(names.JOBS_STREAM)}

    assert (event.type, event.job.model) == ("completed", "tiny.en")
    assert consumers == {names.ROUTER_CONSUMER, names.tenant_consumer("tiny.en", names.DEFAULT_TENANT)}
