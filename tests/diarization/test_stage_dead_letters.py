"""The dead-letter path across the diarization stage: a job whose diarization fails on every delivery ends failed
with the reason, as a transcription that runs out of deliveries does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from nats.js import JetStreamContext
from nats.js.errors import ObjectNotFoundError

from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import names
from tests.diarization.conftest import StartDiarizer
from tests.diarization.test_stage_faults import status_reached
from tests.worker.jobs import submit, terminal_event
from worker.service import Worker

WITHIN_S: Final = 120.0


async def test_a_job_whose_diarization_fails_on_every_delivery_ends_failed_through_the_dead_letter_handler(
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
    worker: Worker,
    start_diarizer: StartDiarizer,
    conversation_wav: Path,
) -> None:
    job_id = await submit(js, topology, conversation_wav, language="en", options={"diarize": True})
    waiting = await status_reached(job_store, job_id, "diarizing")
    assert waiting.transcript_object is not None and waiting.audio_object is not None
    # The Whisper transcript the stage labels is lost: every delivery fails (a transient fault as far as the
    # diarization worker can tell) until the deliveries run out.
    await topology.transcripts.delete(waiting.transcript_object)

    async with start_diarizer(max_deliver=2):
        event = await terminal_event(js, job_id, within_s=WITHIN_S)

    assert event.type == "failed"
    assert event.job.error == (
        f"gave up after 2 deliveries: transcript {waiting.transcript_object!r} is gone (expired or deleted)"
    )
    record = (await job_store.require(job_id)).record
    assert (record.status, record.attempts) == ("failed", 3)  # one transcription, two diarization deliveries
    advisory = await js.get_last_msg(
        names.DEADLETTER_STREAM, names.DIARIZE_MAX_DELIVERIES_ADVISORY.replace("*", names.DIARIZERS_CONSUMER)
    )
    assert (json.loads(advisory.data)["stream"], json.loads(advisory.data)["deliveries"]) == (names.DIARIZE_STREAM, 2)
    assert (await js.stream_info(names.DIARIZE_STREAM)).state.messages == 0
    try:
        await topology.audio.get_info(waiting.audio_object)
    except ObjectNotFoundError:
        pass
    else:
        raise AssertionError("the failed job's audio was kept")
