"""The diarization stage as `/health` shows it: the live diarization workers (their heartbeats in the
`jetscribe_diarizers` bucket) and the stage's queue (its durable consumer `diarizers` on `JETSCRIBE_DIARIZE`).

Read without a `KeyValue` handle or a consumer of our own, as `jetscribe.offer.live_workers` reads the workers
bucket: the keys from the bucket stream's state, each value with a last-message-by-subject get. Before the first
diarization worker starts, neither the bucket nor the consumer exists: no diarizers, and every message in the
stream waits.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from schemas import DiarizerHeartbeat, SchemaError, names
from schemas.api import DiarizationStage, QueueDepth
from schemas.codec import decode_diarizer_heartbeat

log = logging.getLogger(__name__)


async def diarization_stage(js: JetStreamContext) -> DiarizationStage:
    """The live diarization workers and the stage's queue now (raises what NATS raises, but NotFoundError)."""
    return DiarizationStage(diarizers=await live_diarizers(js), queue=await _queue(js))


async def live_diarizers(js: JetStreamContext) -> list[DiarizerHeartbeat]:
    """Diarization workers whose heartbeat has not expired, in worker-id order."""
    stream = names.kv_stream(names.DIARIZERS_BUCKET)
    try:
        info = await js.stream_info(stream, subjects_filter=names.kv_subject(names.DIARIZERS_BUCKET))
    except NotFoundError:
        return []
    found = []
    for subject in sorted(info.state.subjects or {}):
        try:
            msg = await js.get_last_msg(stream, subject)
        except NotFoundError:
            continue  # expired just now
        if not msg.data:
            continue  # the delete marker of a worker that stopped cleanly
        try:
            found.append(decode_diarizer_heartbeat(msg.data))
        except SchemaError as exc:
            log.warning("ignoring diarizer heartbeat %s: %s", subject, exc)
    return found


async def _queue(js: JetStreamContext) -> QueueDepth:
    """The stage's queue, with how long its first waiting job has waited (by that message's stream time)."""
    try:
        consumer = await js.consumer_info(names.DIARIZE_STREAM, names.DIARIZERS_CONSUMER)
    except NotFoundError:
        # No diarization worker has ever started: every message of the work-queue stream waits.
        state = (await js.stream_info(names.DIARIZE_STREAM)).state
        return QueueDepth(pending=state.messages, in_flight=0, oldest_waiting_s=await _waited(js, 0, state.messages))
    pending = consumer.num_pending or 0
    delivered = (consumer.delivered.stream_seq or 0) if consumer.delivered else 0
    return QueueDepth(
        pending=pending,
        in_flight=consumer.num_ack_pending or 0,
        oldest_waiting_s=await _waited(js, delivered, pending),
    )


async def _waited(js: JetStreamContext, delivered: int, pending: int) -> float | None:
    """Seconds the first message after stream sequence `delivered` has waited; None when nothing waits."""
    if not pending:
        return None
    try:
        first = await js.get_msg(names.DIARIZE_STREAM, seq=delivered + 1, next=True)
    except NotFoundError:
        return None  # taken since the consumer was read
    if first.time is None:
        return None
    return round(max(0.0, (datetime.now(UTC) - first.time).total_seconds()), 3)
