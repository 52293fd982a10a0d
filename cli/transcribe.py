"""`jetscribe transcribe PATH_OR_URL...`: transcribe files, folders and URLs through a jetscribe gateway.

Each input is uploaded (or, for a URL, handed to a worker to download), followed over its event
stream, and its transcript written in the chosen format; a bar per file in flight and one for all
of them show how far it got. Inputs whose result exists already are skipped unless `--force`. The
exit status is 0 when every input was transcribed or skipped, 1 when any failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from cli.inputs import InputError, Target, plan
from cli.remote import add_connection_options, client_for, explain, server_of
from client import ApiError, ClientError, JetscribeClient
from gateway.transcripts import FORMATS
from schemas import DecodeOptions

RETRYABLE_STATUSES: Final = frozenset({429, 503})
SUBMIT_ATTEMPTS: Final = 30
DEFAULT_RETRY_S: Final = 5.0
CANCEL_TIMEOUT_S: Final = 5.0

Result = Literal["done", "failed", "cancelled", "skipped"]


@dataclass(frozen=True, slots=True)
class Outcome:
    target: Target
    result: Result
    detail: str
    """The file written, or what went wrong."""
    duration_secs: float | None = None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "transcribe",
        help="transcribe audio files, folders (recursively) and URLs through a jetscribe gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH_OR_URL", help="audio or video files, folders, http(s) URLs")
    add_connection_options(parser)
    parser.add_argument("--format", choices=FORMATS, default="srt", help="transcript format (default: srt)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write results here (default: next to each input)")
    parser.add_argument("--language", help="ISO 639-1 code of the spoken language (default: detect it)")
    parser.add_argument("--task", choices=("transcribe", "translate"), default="transcribe")
    parser.add_argument(
        "--model", help="the Whisper model to run with (default: the service's; GET /models lists them)"
    )
    parser.add_argument("--concurrency", type=_positive, default=4, metavar="N", help="files in flight (default 4)")
    parser.add_argument("--force", action="store_true", help="transcribe again inputs whose result exists")
    decoding = parser.add_argument_group("decoding (every option, with its range: GET /openapi.json)")
    decoding.add_argument("--beam-size", type=int, metavar="N", help="beam-search width, 1–16 (default 5)")
    decoding.add_argument("--prompt", metavar="TEXT", help="initial prompt: names, spelling, style")
    decoding.add_argument("--languages", metavar="CODES", help="detect the language only among these, e.g. en,de")
    decoding.add_argument("--audio-stream", type=int, metavar="N", help="audio stream to transcribe, from 0")
    decoding.add_argument(
        "--vad", action=argparse.BooleanOptionalAction, help="voice activity detection (default: the service's)"
    )
    speakers = parser.add_argument_group("speakers (the diarization stage: docs/diarization.md)")
    speakers.add_argument(
        "--diarize", action="store_true", help="label every segment and word with its speaker (SPEAKER_00, …)"
    )
    speakers.add_argument("--speakers", type=int, metavar="N", help="exactly N speakers, 1–32 (implies --diarize)")
    speakers.add_argument("--min-speakers", type=int, metavar="N", help="at least N speakers (implies --diarize)")
    speakers.add_argument("--max-speakers", type=int, metavar="N", help="at most N speakers (implies --diarize)")
    parser.set_defaults(run_client=run)


def decode_options(args: argparse.Namespace) -> DecodeOptions:
    """The decoding options the flags ask for, checked by the job message's rules; ValueError saying which."""
    chosen = {
        "beam_size": args.beam_size,
        "initial_prompt": args.prompt,
        "languages": [code.strip() for code in args.languages.split(",") if code.strip()] if args.languages else None,
        "audio_stream": args.audio_stream,
        "vad": args.vad,
        "num_speakers": args.speakers,
        "min_speakers": args.min_speakers,
        "max_speakers": args.max_speakers,
    }
    # A speaker count is only meaningful with diarization: asking for one asks for it.
    if args.diarize or any(chosen[name] is not None for name in ("num_speakers", "min_speakers", "max_speakers")):
        chosen["diarize"] = True
    try:
        return msgspec.convert({k: v for k, v in chosen.items() if v is not None}, DecodeOptions)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid decoding option: {exc}") from exc


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw} is not a positive number")
    return value


def run(args: argparse.Namespace) -> int:
    return asyncio.run(transcribe(args))


async def transcribe(args: argparse.Namespace) -> int:
    errors = Console(stderr=True)
    try:
        options = decode_options(args)
        targets = plan(args.inputs, args.format, args.out)
    except (InputError, ValueError) as exc:
        errors.print(f"jetscribe: {exc}", markup=False, highlight=False)
        return 2
    if not targets:
        errors.print("jetscribe: no audio or video files found in " + ", ".join(args.inputs), markup=False)
        return 1
    async with client_for(args) as client:
        try:
            await client.list_jobs(limit=1)
            health = await client.health()
        except ClientError as exc:
            errors.print(f"jetscribe: {explain(exc, server_of(args))}", markup=False, highlight=False)
            return 1
        if not health.workers:
            errors.print(
                f"note: {client.base_url} has no worker running: jobs wait in its queue until one starts", markup=False
            )
        outcomes = await _Run(args, client, errors, options).all(targets)
    _summary(outcomes)
    return 0 if all(o.result in ("done", "skipped") for o in outcomes) else 1


class _Run:
    """One `transcribe` run: the files in flight, their bars and their outcomes."""

    def __init__(
        self, args: argparse.Namespace, client: JetscribeClient, console: Console, options: DecodeOptions
    ) -> None:
        self._args = args
        self._options = options
        self._client = client
        self._slots = asyncio.Semaphore(args.concurrency)
        self._progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}", markup=False),
            TimeElapsedColumn(),
            console=console,
        )
        self._overall = TaskID(0)

    async def all(self, targets: list[Target]) -> list[Outcome]:
        with self._progress:
            self._overall = self._progress.add_task("all files", total=len(targets), status="")
            return list(await asyncio.gather(*(self._one(t) for t in targets)))

    async def _one(self, target: Target) -> Outcome:
        if target.output.exists() and not self._args.force:
            self._progress.advance(self._overall)
            return Outcome(target, "skipped", f"{target.output} exists (--force transcribes it again)")
        async with self._slots:
            bar = self._progress.add_task(_short(target.label), total=100, status="starting")
            try:
                return await self._transcribe(target, bar)
            except ClientError as exc:
                return Outcome(target, "failed", explain(exc, self._client.base_url))
            finally:
                self._progress.update(bar, visible=False)
                self._progress.advance(self._overall)

    async def _transcribe(self, target: Target, bar: TaskID) -> Outcome:
        job_id = await self._submit(target, bar)
        self._progress.update(bar, completed=0, status="queued")
        try:
            job = await self._client.wait(
                job_id, on_progress=lambda percent: self._progress.update(bar, completed=percent, status="transcribing")
            )
        except asyncio.CancelledError:
            # Interrupted: the job would run on for nobody.
            with contextlib.suppress(ClientError, TimeoutError):
                async with asyncio.timeout(CANCEL_TIMEOUT_S):
                    await self._client.cancel(job_id)
            raise
        if job.status != "done":
            reason = job.error or job.status
            result: Result = "cancelled" if job.status == "cancelled" else "failed"
            return Outcome(target, result, f"job {job_id} {job.status}: {reason}", job.duration_secs)
        text = await self._client.transcript(job_id, self._args.format)
        await asyncio.to_thread(_write, target.output, text)
        self._progress.update(bar, completed=100, status="done")
        return Outcome(target, "done", str(target.output), job.duration_secs)

    async def _submit(self, target: Target, bar: TaskID) -> str:
        """Submit, waiting out a full queue or a busy gateway; one Idempotency-Key for every attempt."""
        key = f"jetscribe-cli-{uuid.uuid4().hex}"
        args = self._args
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                if isinstance(target.source, str):
                    self._progress.update(bar, status="sending URL")
                    return await self._client.submit_url(
                        target.source,
                        language=args.language,
                        task=args.task,
                        options=self._options,
                        model=args.model,
                        idempotency_key=key,
                    )
                self._progress.update(bar, status="uploading")
                return await self._client.submit(
                    target.source,
                    language=args.language,
                    task=args.task,
                    options=self._options,
                    model=args.model,
                    idempotency_key=key,
                    on_upload=lambda sent, total: self._progress.update(
                        bar, completed=100 * sent / max(total, 1), status="uploading"
                    ),
                )
            except ApiError as exc:
                if exc.status not in RETRYABLE_STATUSES or attempt == SUBMIT_ATTEMPTS:
                    raise
                delay_s = exc.retry_after_s or DEFAULT_RETRY_S
                self._progress.update(bar, status=f"busy ({exc.status}), retrying in {delay_s:g} s")
                await asyncio.sleep(delay_s)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _write(path: Path, text: str) -> None:
    """Write the transcript whole or not at all: a half-written file would count as finished next time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1) :]


def _summary(outcomes: list[Outcome]) -> None:
    table = Table(title="jetscribe transcribe")
    table.add_column("input", overflow="fold")
    table.add_column("result")
    table.add_column("audio", justify="right")
    table.add_column("output or error", overflow="fold")
    styles = {"done": "green", "skipped": "dim", "failed": "red", "cancelled": "yellow"}
    for outcome in outcomes:
        length = f"{outcome.duration_secs:.1f} s" if outcome.duration_secs is not None else ""
        table.add_row(
            Text(outcome.target.label), Text(outcome.result, style=styles[outcome.result]), length, Text(outcome.detail)
        )
    counts = {r: sum(o.result == r for o in outcomes) for r in styles}
    table.caption = ", ".join(f"{n} {r}" for r, n in counts.items() if n)
    Console().print(table)
