"""Submitting jobs straight to NATS, as a producer without the gateway does, and waiting for their end."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any, Final

from nats.js import JetStreamContext

from jetscribe.topology import Topology
from schemas import DecodeOptions, JobMessage, TerminalEvent, encode, names
from schemas.codec import decode_terminal_event
from schemas.submit import Task

AUDIO: Final = Path(__file__).parent.parent / "fixtures" / "audio"
TEXTS: Final[dict[str, str]] = json.loads((AUDIO / "texts.json").read_text())
POLL_S: Final = 0.05


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex[:12]}"


async def upload(topology: Topology, audio: Path, name: str | None = None) -> str:
    """Put `audio` into the audio bucket; returns the object name."""
    name = name or f"{uuid.uuid4().hex[:12]}{audio.suffix}"
    with audio.open("rb") as f:
        await topology.audio.put(name, f)
    return name


async def jobs_left(js: JetStreamContext, *, within_s: float = 10.0) -> int:
    """Job messages still in the jobs stream once it is empty or `within_s` has passed. A worker
    publishes a job's terminal event before it acknowledges the message, so a test that has just seen
    the event waits here for the acknowledgement."""
    for _ in range(int(within_s / POLL_S)):
        if not (await js.stream_info(names.JOBS_STREAM)).state.messages:
            return 0
        await asyncio.sleep(POLL_S)
    return (await js.stream_info(names.JOBS_STREAM)).state.messages


async def publish_job(js: JetStreamContext, message: JobMessage) -> None:
    """On its model's subject when it names one, else on the subject the router takes jobs from."""
    subject = names.model_jobs_subject(message.model, message.tenant) if message.model else names.JOBS_SUBJECT
    await js.publish(subject, encode(message), headers={names.MSG_ID_HEADER: message.job_id})


async def submit(
    js: JetStreamContext,
    topology: Topology,
    audio: Path,
    *,
    language: str | None = None,
    task: Task = "transcribe",
    beam_size: int = 1,
    word_timestamps: bool = True,
    options: dict[str, Any] | None = None,
    **fields: Any,
) -> str:
    """Upload `audio` and publish its job message; returns the job id. Greedy decoding keeps tests fast;
    `options` are more `DecodeOptions` fields."""
    job_id = new_job_id()
    message = JobMessage(
        job_id=job_id,
        audio_object=await upload(topology, audio),
        language=language,
        task=task,
        options=DecodeOptions(beam_size=beam_size, word_timestamps=word_timestamps, **(options or {})),
        **fields,
    )
    await publish_job(js, message)
    return job_id


async def terminal_event(js: JetStreamContext, job_id: str, *, within_s: float = 90.0) -> TerminalEvent:
    """The job's first terminal event on the events stream, waiting up to `within_s` seconds."""
    sub = await js.subscribe(names.job_events_filter(job_id), ordered_consumer=True)
    try:
        msg = await sub.next_msg(timeout=within_s)
    finally:
        await sub.unsubscribe()
    return decode_terminal_event(msg.data)


async def terminal_event_count(js: JetStreamContext, job_id: str) -> int:
    """How many terminal events the events stream holds for the job."""
    info = await js.stream_info(names.EVENTS_STREAM, subjects_filter=names.job_events_filter(job_id))
    return sum((info.state.subjects or {}).values())


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def recall(expected: str, heard: str) -> float:
    """Share of the expected words that appear in what was heard."""
    wanted = words_of(expected)
    got = set(words_of(heard))
    return sum(w in got for w in wanted) / len(wanted)
