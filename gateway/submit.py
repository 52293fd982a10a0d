"""`POST /jobs`: stream the `audio` part into the object store, validate the fields, queue the job.

The body is a multipart form (the `audio` file, or `audio_url`) or a JSON object with `audio_url`; both take
`language`, `task`, `webhook_url` and every decoding option of the job message (`gateway.options`).

Nothing outlives a refused submission: the partial or complete audio object, the job record and
the idempotency reservation are removed again on every error path. Every byte of every part counts
against the body limit (`max_upload_bytes` plus `MULTIPART_OVERHEAD_BYTES`), unknown fields
included, and a form has at most `MAX_FORM_PARTS` parts. The job message is checked with the
worker's own decoder before it is published: what a worker would refuse is a 422 here.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import msgspec
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError

from gateway import keys, options
from gateway.auth import caller_of, caller_scope, refusal
from gateway.errors import (
    BadRequestError,
    PayloadTooLargeError,
    QueueFullError,
    UnavailableError,
    UnprocessableError,
    UnsupportedMediaError,
    error_response,
)
from gateway.idempotency import IdempotencyKeys, fingerprint, record_key
from gateway.joblist.counts import jobs_by_tenant
from gateway.models import check_model
from gateway.publish import STREAM_FULL_ERR, publish_durably
from gateway.uploads import AudioDigest, ObjectUpload, format_bytes
from jetscribe.errors import UnsafeTargetError
from jetscribe.netguard import check_public_url
from schemas import DecodeOptions, JobMessage, JobRecord, SchemaError, Task, encode, names
from schemas.api import JobAccepted
from schemas.codec import decode_job_message
from schemas.languages import WHISPER_LANGUAGES
from schemas.state import IdempotencyRecord
from schemas.submit import HttpUrl

log = logging.getLogger(__name__)

TASKS: Final[frozenset[Task]] = frozenset({"transcribe", "translate"})
FIELDS: Final = frozenset({"language", "task", "webhook_url", "audio_url", "model"})
MAX_FIELD_BYTES: Final = 4096
MAX_FORM_PARTS: Final = 48
"""`audio`, the five fields, the decoding options, and room for a few a newer client might send."""
MAX_JSON_BYTES: Final = 64 * 1024
"""A JSON body holds no audio: its fields and options fit in far less."""
READ_BYTES: Final = 64 * 1024
MAX_IDEMPOTENCY_KEY_CHARS: Final = 255
MAX_DISPLAY_NAME_CHARS: Final = 255
RETRY_AFTER_S: Final = 5
# Multipart framing and the small text fields travel in the same body as the audio.
MULTIPART_OVERHEAD_BYTES: Final = 64 * 1024
MAX_EXTRA_VALUES: Final = 16
"""How many times one of a form shape's extra fields may repeat (`timestamp_granularities[]` and the like)."""


@dataclass
class Submission:
    """What one `POST /jobs` has read so far."""

    body_limit: int
    """Bytes all parts together may hold."""
    language: str | None = None
    task: Task = "transcribe"
    webhook_url: str | None = None
    audio_url: str | None = None
    model: str | None = None
    """As requested; None means the service's default model."""
    option_values: dict[str, str] = field(default_factory=dict)
    """The decoding options' form fields as sent (text), read into `options` once the form is complete."""
    options: DecodeOptions = field(default_factory=DecodeOptions)
    extra_values: dict[str, list[str]] = field(default_factory=dict)
    """A form shape's extra fields as sent (text, in order; a field may repeat), for its `finish`."""
    seen: set[str] = field(default_factory=set)
    upload: ObjectUpload | AudioDigest | None = None
    filename: str | None = None
    content_type: str | None = None
    parts: int = 0
    body_bytes: int = 0

    def count(self, n: int) -> None:
        """Count `n` more bytes of the body; 413 past the limit."""
        self.body_bytes += n
        if self.body_bytes > self.body_limit:
            raise PayloadTooLargeError(
                f"the form is larger than this service accepts ({self.body_limit} bytes: the upload limit plus "
                f"{MULTIPART_OVERHEAD_BYTES} bytes for the other fields): send only `audio` (or `audio_url`), "
                "`language`, `task` and `webhook_url`"
            )

    def fingerprint(self) -> str:
        """What this submission asks for, as `gateway.idempotency.fingerprint` compares replays."""
        return fingerprint(
            {
                "language": self.language,
                "task": self.task,
                "webhook_url": self.webhook_url,
                "audio_url": self.audio_url,
                "model": self.model,
                "audio_sha256": self.upload.sha256_hex if self.upload is not None else None,
                "options": msgspec.to_builtins(self.options),
            }
        )


@dataclass(frozen=True)
class FormShape:
    """How a route's multipart form names things: `POST /jobs`'s own (`JOBS_FORM`), or another API's
    (`gateway.openai_api`) read through the same upload path, limits, job record and idempotency.

    The decoding options of `gateway.options` are read by their own names in every shape.
    """

    audio_field: str
    """The file part holding the audio."""
    fields: frozenset[str]
    """Fields of `POST /jobs` (`FIELDS`) this shape reads with their meaning there."""
    extra_fields: frozenset[str] = frozenset()
    """Fields of other names kept, as text, in `Submission.extra_values` for `finish`."""
    extra_prefixes: tuple[str, ...] = ()
    """Fields whose names begin so are kept too (a form's spelling of an object: `chunking_strategy[type]`)."""

    def keeps(self, name: str) -> bool:
        return name in self.extra_fields or name.startswith(self.extra_prefixes)

    implied_options: Callable[[Mapping[str, list[str]]], Mapping[str, str]] | None = None
    """Option values the extra fields imply (OpenAI's `diarized_json`: `diarize`), read with the form's own
    option fields, which win over them."""
    finish: Callable[[Submission], Awaitable[None]] | None = None
    """Turns the extra fields into the submission's language, task and options once the form is read (before the
    audio is committed); its errors refuse the submission like any other."""
    task: Task | None = None
    """The task of every job of this shape; None: the form's `task` field."""


JOBS_FORM: Final = FormShape(audio_field="audio", fields=FIELDS)


def new_job_id() -> str:
    return uuid.uuid4().hex


def parse_language(value: str) -> str | None:
    language = value.strip().lower()
    if not language:
        return None
    if language not in WHISPER_LANGUAGES:
        raise UnprocessableError(
            f"language {value!r} is not a language Whisper knows: give an ISO 639-1 code such as 'en', 'de' or "
            "'fr' (or 'haw', 'yue'), or leave `language` out or empty to auto-detect it"
        )
    return language


def parse_model(value: str) -> str | None:
    """A model name as the form gives it; empty means the default model. Whether it is on offer is checked later."""
    model = value.strip()
    if not model:
        return None
    try:
        names.model_token(model)
    except ValueError as exc:
        raise UnprocessableError(f"{exc}; GET /models lists the models on offer") from exc
    return model


def parse_task(value: str) -> Task:
    task = value.strip()
    if not task:
        return "transcribe"
    for known in TASKS:
        if task == known:
            return known
    raise UnprocessableError(f"task {value!r} is not supported: use 'transcribe' or 'translate'")


async def parse_webhook_url(value: str, *, allow_private: bool, what: str = "webhook_url") -> str | None:
    url = value.strip()
    if not url:
        return None
    if len(url) > 2048:
        raise UnprocessableError(f"{what} is {len(url)} characters long; at most 2048 are accepted")
    try:
        # The job message's own rule (schemas.submit.HttpUrl), which workers and webhook delivery hold it to.
        msgspec.convert(url, HttpUrl)
    except msgspec.ValidationError as exc:
        raise UnprocessableError(
            f"{what} {url!r} is not an absolute http:// or https:// URL: write the scheme in lower case and "
            "percent-encode spaces (%20)"
        ) from exc
    try:
        await check_public_url(url, allow_private=allow_private, what=what)
    except UnsafeTargetError as exc:
        raise UnprocessableError(str(exc)) from exc
    return url


async def read_field(part: BodyPartReader, submission: Submission) -> str:
    """The text of a field, however many socket reads it arrives in; 400 past `MAX_FIELD_BYTES`."""
    data = bytearray()
    # read_chunk returns what the stream has (possibly a few bytes): read to the part's end.
    while chunk := await part.read_chunk(READ_BYTES):
        submission.count(len(chunk))
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise BadRequestError(f"form field `{part.name}` is longer than {MAX_FIELD_BYTES} bytes")
    try:
        return bytes(data).decode(part.get_charset("utf-8"))
    except (UnicodeDecodeError, LookupError) as exc:
        raise BadRequestError(f"form field `{part.name}` is not valid UTF-8 text: {exc}") from exc


async def submit_job(request: web.Request) -> web.Response:
    """Accept an upload and queue it as a job: `202 {"job_id"}` with `Location: /jobs/{id}`."""
    _require_multipart(request)
    accepted = await accept(request, JOBS_FORM)
    return _accepted(accepted.job_id, replayed=accepted.replayed)


@dataclass(frozen=True)
class Accepted:
    """A submission that is a queued job: new, or the job of an earlier request with the same Idempotency-Key."""

    job_id: str
    submission: Submission
    replayed: bool


async def accept(request: web.Request, shape: FormShape) -> Accepted:
    """Read, store and queue the request's submission in `shape` (honouring `Idempotency-Key`)."""
    idempotency_key = _idempotency_key(request)
    if idempotency_key is None:
        job_id, submission = await _submit(request, shape)
        return Accepted(job_id, submission, replayed=False)
    idempotency = IdempotencyKeys(request.app[keys.TOPOLOGY].idempotency)
    begun = await idempotency.begin(record_key(caller_scope(request), idempotency_key))
    if isinstance(begun, IdempotencyRecord):
        return await _replay(request, begun, shape)
    try:
        async with begun.renewing():
            job_id, submission = await _submit(request, shape)
    except BaseException:
        await asyncio.shield(begun.release())
        raise
    try:
        await begun.complete(request_fingerprint=submission.fingerprint(), job_id=job_id)
    except Exception:
        # The job exists: answer it. The key's lease runs out, and a retry after that makes a second job.
        log.exception("job %s: its Idempotency-Key could not be recorded", job_id)
    return Accepted(job_id, submission, replayed=False)


async def _submit(request: web.Request, shape: FormShape) -> tuple[str, Submission]:
    """Read, store and queue one submission; returns its job id and the submission."""
    app = request.app
    tenant = caller_of(request).tenant
    await _refuse_when_queue_full(app, tenant)
    if (too_large := _declared_too_large(request)) is not None:
        raise too_large
    job_id = new_job_id()
    upload = ObjectUpload(app[keys.JS], names.AUDIO_BUCKET, job_id, max_bytes=app[keys.SETTINGS].max_upload_bytes)
    submission = await _read_body(request, upload, shape)
    await _queue(app, job_id, tenant, submission)
    app[keys.METRICS].jobs_submitted.inc()
    if submission.audio_url is None:
        app[keys.METRICS].upload_bytes.inc(upload.size)
        log.info("job %s: received %s of audio", job_id, format_bytes(upload.size))
    else:
        log.info("job %s: audio to be fetched from its audio_url", job_id)
    return job_id, submission


async def _replay(request: web.Request, first: IdempotencyRecord, shape: FormShape) -> Accepted:
    """A request with the key of a finished one: the same job if it asks the same, else 422."""
    if (too_large := _declared_too_large(request)) is not None:
        raise too_large
    digest = AudioDigest(max_bytes=request.app[keys.SETTINGS].max_upload_bytes)
    submission = await _read_body(request, digest, shape)
    if submission.fingerprint() != first.fingerprint or first.job_id is None:
        raise UnprocessableError(
            "this Idempotency-Key was used for a different request (other fields or other audio): "
            "send the same request again to get its job, or use a new key for a new job"
        )
    return Accepted(first.job_id, submission, replayed=True)


def _declared_too_large(request: web.Request) -> PayloadTooLargeError | None:
    """The refusal for a body whose declared length already exceeds the limit (before reading any of it)."""
    limit = request.app[keys.SETTINGS].max_upload_bytes
    length = request.content_length
    if length is None or length <= limit + MULTIPART_OVERHEAD_BYTES:
        return None
    return PayloadTooLargeError(
        f"the request body is {format_bytes(length)} ({length} bytes), more than this service's upload limit of "
        f"{format_bytes(limit)} ({limit} bytes): send a shorter or more compressed file"
    )


async def expect_upload(request: web.Request) -> web.Response | None:
    """`Expect: 100-continue`: refuse an unauthenticated or oversized upload before the client sends it, else
    let it come. aiohttp calls this before any middleware, so the API key is checked here too."""
    if (unauthorized := refusal(request)) is not None:
        return unauthorized
    too_large = _declared_too_large(request)
    if too_large is not None:
        return error_response(too_large.status, too_large.message)
    if request.headers.get("Expect", "").lower() != "100-continue":
        return error_response(417, f"Expect: {request.headers['Expect']!r} is not supported; use 100-continue")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


def _accepted(job_id: str, *, replayed: bool) -> web.Response:
    headers = {"Location": f"/jobs/{job_id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.Response(
        status=202, body=encode(JobAccepted(job_id=job_id)), content_type="application/json", headers=headers
    )


def _require_multipart(request: web.Request) -> None:
    if request.content_type not in ("multipart/form-data", "application/json"):
        got = request.headers.get("Content-Type", "no Content-Type")
        raise UnsupportedMediaError(
            f"POST /jobs takes a multipart/form-data body with an `audio` file part (got {got!r}), "
            "e.g. curl -F audio=@talk.mp3 http://HOST/jobs, or an application/json body with `audio_url`"
        )


async def _read_body(request: web.Request, sink: ObjectUpload | AudioDigest, shape: FormShape) -> Submission:
    if request.content_type == "application/json" and shape is JOBS_FORM:
        return await _read_json(request)
    return await _read_form(request, sink, shape)


async def _read_json(request: web.Request) -> Submission:
    """A JSON object: `audio_url` (required), `language`, `task`, `model`, `webhook_url` and the decoding options
    by name, each of its JSON type. Unknown fields are refused (a typed body: a misspelt option is a 422, not
    ignored)."""
    settings = request.app[keys.SETTINGS]
    body = bytearray()
    while chunk := await request.content.read(READ_BYTES):
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise PayloadTooLargeError(
                f"the JSON body is larger than {MAX_JSON_BYTES} bytes: it holds only `audio_url` and the job's "
                "fields (upload audio as multipart/form-data)"
            )
    try:
        fields = msgspec.json.decode(bytes(body), type=dict[str, Any])
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"the JSON body is malformed or not an object: {exc}") from exc
    submission = Submission(body_limit=MAX_JSON_BYTES)
    unknown = sorted(set(fields) - FIELDS - options.NAMES)
    if unknown:
        raise UnprocessableError(
            f"unknown field(s) {', '.join(f'`{name}`' for name in unknown)} in the JSON body: it takes `audio_url`, "
            "`language`, `task`, `model`, `webhook_url` and the decoding options listed in GET /openapi.json"
        )
    text: dict[str, str] = {}
    for name in sorted(FIELDS & set(fields)):
        value = fields[name]
        if value is None:
            continue
        if not isinstance(value, str):
            raise UnprocessableError(f"field `{name}` must be a string (got {type(value).__name__})")
        text[name] = value
    for name, value in text.items():
        await _set_field(submission, name, value, allow_private=settings.allow_private_targets)
    if submission.audio_url is None:
        raise BadRequestError(
            "the JSON body has no `audio_url`: give the audio's http(s) address, or upload the file as "
            "multipart/form-data (the field `audio`)"
        )
    submission.options = options.parse_json({name: fields[name] for name in options.NAMES & set(fields)})
    return submission


async def _read_form(request: web.Request, sink: ObjectUpload | AudioDigest, shape: FormShape) -> Submission:
    """Read every part; the audio goes to `sink` (the object store, or a digest), fields are checked as they
    arrive. On any error the sink's partial audio is discarded."""
    settings = request.app[keys.SETTINGS]
    submission = Submission(body_limit=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES)
    try:
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                await _read_part(request, sink, part, submission, shape)
        except (ValueError, BadHttpMessage) as exc:
            raise BadRequestError(f"the multipart body is malformed: {exc}") from exc
        implied = shape.implied_options(submission.extra_values) if shape.implied_options else {}
        submission.options = options.parse_form({**implied, **submission.option_values})
        if shape.task is not None:
            submission.task = shape.task
        if shape.finish is not None:
            await shape.finish(submission)
        upload = submission.upload
        if upload is None:
            if submission.audio_url is not None:
                return submission
            url_hint = " (or its http(s) address as the field `audio_url`)" if "audio_url" in shape.fields else ""
            raise BadRequestError(
                f"the form has no `{shape.audio_field}` part: send the audio file as the form field "
                f"`{shape.audio_field}`{url_hint}"
            )
        if submission.audio_url is not None:
            raise BadRequestError("the form has both an `audio` file and an `audio_url`: send one of them")
        if upload.size == 0:
            raise BadRequestError("the `audio` part is empty (0 bytes): send a non-empty audio file")
        await upload.commit(description=_describe(submission))
    except BaseException:
        await asyncio.shield(sink.discard())
        raise
    return submission


async def _read_part(
    request: web.Request,
    sink: ObjectUpload | AudioDigest,
    part: BodyPartReader | MultipartReader,
    submission: Submission,
    shape: FormShape,
) -> None:
    settings = request.app[keys.SETTINGS]
    submission.parts += 1
    if submission.parts > MAX_FORM_PARTS:
        raise BadRequestError(
            f"the form has more than {MAX_FORM_PARTS} parts: send `audio`, and `language`, `task` and "
            "`webhook_url` if needed"
        )
    if isinstance(part, MultipartReader):
        raise BadRequestError("nested multipart parts are not supported: send `audio` as a plain file part")
    name = part.name
    if name == shape.audio_field:
        if submission.upload is not None:
            raise BadRequestError(f"the form has more than one `{name}` part: send exactly one audio file per job")
        submission.upload = sink
        submission.filename = part.filename
        submission.content_type = part.headers.get("Content-Type")

        async def counted(n: int) -> bytes:
            data = await part.read_chunk(n)
            submission.count(len(data))
            return data

        await sink.write_from(counted)
        return
    if name is not None and name not in shape.fields and name not in options.NAMES and shape.keeps(name):
        values = submission.extra_values.setdefault(name, [])
        if len(values) >= MAX_EXTRA_VALUES:
            raise BadRequestError(f"the form has more than {MAX_EXTRA_VALUES} `{name}` fields")
        values.append(await read_field(part, submission))
        return
    if name not in shape.fields and name not in options.NAMES:
        # Ignored (forward compatible), but read through the same limit as everything else.
        while chunk := await part.read_chunk(READ_BYTES):
            submission.count(len(chunk))
        return
    if name in submission.seen:
        raise BadRequestError(f"the form has more than one `{name}` field")
    submission.seen.add(name)
    await _set_field(submission, name, await read_field(part, submission), allow_private=settings.allow_private_targets)


async def _set_field(submission: Submission, name: str, value: str, *, allow_private: bool) -> None:
    """Check one text field of the form and keep it; 422 for a value the service does not accept (decoding
    options are read together once the form is complete)."""
    if name in options.NAMES:
        submission.option_values[name] = value
    elif name == "language":
        submission.language = parse_language(value)
    elif name == "task":
        submission.task = parse_task(value)
    elif name == "model":
        submission.model = parse_model(value)
    elif name == "audio_url":
        submission.audio_url = await parse_webhook_url(value, allow_private=allow_private, what="audio_url")
    else:
        submission.webhook_url = await parse_webhook_url(value, allow_private=allow_private)


def _display_name(submission: Submission) -> str | None:
    """The file's own name, for people (the job list, the page): the last part of a path or URL, at most 255 chars."""
    if submission.filename:
        # Clients percent-encode what a quoted header value cannot hold (browsers `"`, CR, LF; aiohttp more).
        path = unquote(submission.filename).replace("\\", "/")
    elif submission.audio_url:
        path = unquote(urlsplit(submission.audio_url).path)
    else:
        return None
    return path.rstrip("/").rpartition("/")[2].strip()[:MAX_DISPLAY_NAME_CHARS] or None


def _describe(submission: Submission) -> str:
    return f"upload {submission.filename or 'without a filename'} ({submission.content_type or 'no content type'})"


async def _queue(app: web.Application, job_id: str, tenant: str, submission: Submission) -> None:
    """Create the queued job record of `tenant` and publish the job message on its model's subject; undo both if
    the queue refuses it (or 422 at once when the model is not on offer)."""
    now = datetime.now(UTC)
    created = False
    try:
        model = await check_model(app, submission.model, submission.language, submission.options.languages or ())
        message = _job_message(job_id, tenant, submission, model, now)
        record = JobRecord.queued(message, created_at=now, filename=_display_name(submission))
        _check_as_a_worker_will(message)
        # Listed before its record exists, so that the job-list indexer finds it listed already.
        await app[keys.JOB_LIST].add_submission(record)
        created = await app[keys.JOB_STORE].create(record) is not None
        await publish_job(app, message)
    except BaseException:
        await asyncio.shield(_undo(app, job_id, record_created=created, audio_stored=submission.upload is not None))
        raise


def _job_message(job_id: str, tenant: str, submission: Submission, model: str, now: datetime) -> JobMessage:
    """The job message; 422 when its fields contradict each other (`JobMessage.__post_init__`'s rules)."""
    try:
        return JobMessage(
            job_id=job_id,
            audio_object=job_id if submission.upload is not None else None,
            audio_url=submission.audio_url,
            language=submission.language,
            task=submission.task,
            options=submission.options,
            webhook_url=submission.webhook_url,
            model=model,
            submitted_at=now,
            tenant=tenant,
        )
    except ValueError as exc:
        raise UnprocessableError(f"the job cannot be queued as submitted: {exc}") from exc


def _check_as_a_worker_will(message: JobMessage) -> None:
    """Decode the message about to be published with the workers' decoder (msgspec checks constraints only
    when decoding, so a Struct built here is unchecked): what a worker would dead-letter is a 422 now."""
    try:
        decode_job_message(encode(message))
    except SchemaError as exc:
        raise UnprocessableError(f"the job cannot be queued as submitted: {exc}") from exc


async def publish_job(app: web.Application, message: JobMessage) -> None:
    """Publish the job message (deduplicated by job id); a full queue becomes 429."""
    try:
        subject = names.model_jobs_subject(message.model, message.tenant) if message.model else names.JOBS_SUBJECT
        await publish_durably(app[keys.JS], subject, encode(message), msg_id=message.job_id)
    except APIError as exc:
        if exc.err_code == STREAM_FULL_ERR or "maximum messages" in (exc.description or ""):
            raise _queue_full(app) from exc
        raise UnavailableError(f"the jobs stream refused the job: {exc.description or exc}") from exc


def _queue_full(app: web.Application) -> QueueFullError:
    limit = app[keys.SETTINGS].max_queued_jobs
    return QueueFullError(
        f"the job queue is full ({limit} jobs waiting or running, the configured maximum): retry in {RETRY_AFTER_S} s",
        retry_after_s=RETRY_AFTER_S,
    )


async def _refuse_when_queue_full(app: web.Application, tenant: str) -> None:
    """Answer 429 before the upload is read when the queue, or `tenant`'s share of it, is already at its limit.

    The tenant's count is read before the upload, so submissions racing each other may pass it by as many as
    arrive at once; the queue's own limit is enforced by the stream itself.
    """
    settings = app[keys.SETTINGS]
    tenant_limit = app[keys.TENANCY].queued_limit(tenant, settings.max_queued_jobs_per_tenant)
    try:
        info = await app[keys.JS].stream_info(names.JOBS_STREAM)
        queued = (await jobs_by_tenant(app[keys.JS], "queued", tenant)).get(tenant, 0) if tenant_limit else 0
    except (NatsTimeoutError, TimeoutError, NoRespondersError) as exc:
        raise UnavailableError(f"NATS did not answer ({exc!r}); try again later") from exc
    if (info.state.messages or 0) >= settings.max_queued_jobs:
        raise _queue_full(app)
    if tenant_limit is not None and queued >= tenant_limit:
        raise QueueFullError(
            f"tenant {tenant!r} already has {queued} queued jobs, its limit of {tenant_limit}: retry in "
            f"{RETRY_AFTER_S} s, once some have started",
            retry_after_s=RETRY_AFTER_S,
        )


async def _undo(app: web.Application, job_id: str, *, record_created: bool, audio_stored: bool) -> None:
    topology = app[keys.TOPOLOGY]
    try:
        if record_created:
            await topology.jobs.purge(job_id)
        if audio_stored:
            await topology.audio.delete(job_id)
    except Exception:
        log.exception("job %s: could not remove the refused job's record or audio", job_id)


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise BadRequestError(f"Idempotency-Key must be 1–{MAX_IDEMPOTENCY_KEY_CHARS} characters (got {len(key)})")
    return key
