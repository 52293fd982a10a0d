"""Which models the cluster offers, from the live workers' heartbeats and the declared models, and whether a job
can be queued for one: the gateway refuses a job that cannot (422), the router fails it.

A model is on offer when a live worker serves it, or when it is declared (`JETSCRIBE_DECLARED_MODELS`: its
workers may be scaled to zero, and its jobs wait for one). A job for an English-only model must be in English
(or leave the language to the model). Whether a model is English-only comes from the workers that serve it;
for a declared model no live worker serves, from whisper.cpp's naming (`tiny.en`, `base.en-q5_0`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from jetscribe.config import Settings
from schemas import SchemaError, WorkerHeartbeat, names
from schemas.codec import decode_heartbeat
from schemas.workers import ServedModel

log = logging.getLogger(__name__)

OFFER_MAX_AGE_S: Final = 1.0
"""How long an accepting answer may rest on the same read of the heartbeats; a refusal always reads them anew."""
_ENGLISH_ONLY_NAME: Final = re.compile(r"\.en(?:-|$)")


def english_only_by_name(model: str) -> bool:
    """Whether whisper.cpp's naming says `model` is English-only: `NAME.en`, or a quantized `NAME.en-q5_0`."""
    return _ENGLISH_ONLY_NAME.search(model) is not None


@dataclass(frozen=True, slots=True)
class OfferedModel:
    """One model on offer, over every live worker that serves it."""

    name: str
    multilingual: bool
    quantization: str | None
    """As its workers report it (the first's, should they differ); None for a declared model no worker serves."""
    engines: tuple[str, ...]
    """The engines its live workers run it on, each as `whispercpp` or `ctranslate2/COMPUTE_TYPE`, sorted."""
    workers: int
    slots: int
    busy_slots: int
    declared: bool


@dataclass(frozen=True, slots=True)
class ModelOffer:
    """The models on offer at one moment, and the live workers they come from."""

    models: dict[str, OfferedModel]
    """By name, in name order."""
    workers: list[WorkerHeartbeat]
    default_model: str

    def refusal(self, model: str, language: str | None, languages: Sequence[str] = ()) -> str | None:
        """Why a job for `model` in `language` (None: detected, among `languages` when given) cannot be queued, or
        None when it can."""
        offered = self.models.get(model)
        if offered is None:
            on_offer = ", ".join(self.models) or "none (no worker is running and no model is declared)"
            return (
                f"model {model!r} is not on offer: no live worker serves it and it is not declared "
                f"(JETSCRIBE_DECLARED_MODELS); models on offer: {on_offer}"
            )
        if offered.multilingual:
            return None
        multilingual = [m.name for m in self.models.values() if m.multilingual]

        def instead(alternative: str | None = None) -> str:
            if multilingual:
                choose = f"choose a multilingual model ({', '.join(multilingual)})"
                return f"{choose}, or {alternative}" if alternative else choose
            return (
                f"no multilingual model is on offer: {alternative}"
                if alternative
                else "no multilingual model is on offer"
            )

        if language not in (None, "en"):
            return f"model {model!r} is English-only: it cannot transcribe language {language!r}: " + instead(
                "leave `language` out to transcribe English"
            )
        if other := [code for code in languages if code != "en"]:
            return (
                f"model {model!r} is English-only: it cannot detect or transcribe {', '.join(other)} (`languages`): "
                + instead("leave `languages` out to transcribe English")
            )
        return None


def model_offer(workers: list[WorkerHeartbeat], settings: Settings) -> ModelOffer:
    """The offer made by `workers` (live heartbeats) and the models `settings` declare."""
    served: dict[str, list[tuple[WorkerHeartbeat, int]]] = {}
    for worker in workers:
        for index, model in enumerate(worker.models):
            served.setdefault(model.name, []).append((worker, index))
    models: dict[str, OfferedModel] = {}
    for name in sorted(set(served) | set(settings.declared_models)):
        reports = [worker.models[index] for worker, index in served.get(name, [])]
        models[name] = OfferedModel(
            name=name,
            multilingual=all(r.multilingual for r in reports) if reports else not english_only_by_name(name),
            quantization=reports[0].quantization if reports else None,
            engines=tuple(sorted({_engine_label(r) for r in reports})),
            workers=len(reports),
            slots=sum(r.slots for r in reports),
            busy_slots=sum(r.busy_slots for r in reports),
            declared=name in settings.declared_models,
        )
    return ModelOffer(models=models, workers=workers, default_model=settings.job_default_model)


def _engine_label(model: ServedModel) -> str:
    return f"{model.engine}/{model.compute_type}" if model.compute_type else model.engine


async def live_workers(js: JetStreamContext, bucket: KeyValue) -> list[WorkerHeartbeat]:
    """Workers whose heartbeat has not expired from the workers bucket, in worker-id order.

    The keys come from the bucket's stream state rather than `KeyValue.keys()`, which would open a
    consumer on every probe of an orchestrator polling `/health`.
    """
    prefix = names.kv_subject(names.WORKERS_BUCKET, "")
    try:
        info = await js.stream_info(
            names.kv_stream(names.WORKERS_BUCKET), subjects_filter=names.kv_subject(names.WORKERS_BUCKET)
        )
    except NotFoundError:
        return []  # a restarted single server lost the in-memory bucket; the workers' next heartbeats make it again
    workers = []
    for subject in sorted(info.state.subjects or {}):
        key = subject.removeprefix(prefix)
        try:
            entry = await bucket.get(key)
        except NotFoundError:
            continue  # deleted by a worker that stopped, or expired just now
        if not entry.value:
            continue
        try:
            workers.append(decode_heartbeat(entry.value))
        except SchemaError as exc:
            log.warning("ignoring worker heartbeat %s: %s", key, exc)
    return workers


class OfferReader:
    """Reads the offer for one process, sharing a read between the requests of `OFFER_MAX_AGE_S`."""

    def __init__(self, js: JetStreamContext, workers: KeyValue, settings: Settings) -> None:
        self._js = js
        self._bucket = workers
        self._settings = settings
        self._lock = asyncio.Lock()
        self._last: ModelOffer | None = None
        self._read_at = 0.0

    async def current(self, *, read_since: float | None = None) -> ModelOffer:
        """The offer, read at most `OFFER_MAX_AGE_S` ago, or (`read_since`, a `time.monotonic()` value) read after
        that moment: concurrent callers share one read."""
        async with self._lock:
            fresh_enough = (
                self._read_at >= read_since
                if read_since is not None
                else time.monotonic() - self._read_at <= OFFER_MAX_AGE_S
            )
            if self._last is None or not fresh_enough:
                read_at = time.monotonic()
                self._last = model_offer(await live_workers(self._js, self._bucket), self._settings)
                self._read_at = read_at
            return self._last

    async def refusal(
        self, model: str, language: str | None, languages: Sequence[str] = ()
    ) -> tuple[str | None, ModelOffer]:
        """Why a job for `model` cannot be queued now (None when it can; see `ModelOffer.refusal`), and the offer
        that says so.

        A refusal is confirmed on a read begun after the question was asked, so a worker that started a
        moment ago is never missed.
        """
        asked_at = time.monotonic()
        offer = await self.current()
        reason = offer.refusal(model, language, languages)
        if reason is not None:
            offer = await self.current(read_since=asked_at)
            reason = offer.refusal(model, language, languages)
        return reason, offer
