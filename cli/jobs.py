"""`jetscribe jobs list|get|wait|cancel`: jobs on a jetscribe gateway, for people and (with `--json`) for scripts.

`--json` prints the API's own JSON: `list` a job list (`{"jobs": [...], "next_cursor": ...}`; with
`--all`, every page in one list and `next_cursor` null), `get` a job, `wait` one job per line (JSON
Lines) as each ends. Exit status: 0 on success; 1 when the gateway refuses a request, or when a job
`wait` followed did not end `done`; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Final, get_args

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.remote import add_connection_options, client_for, explain, server_of
from client import ApiError, ClientError, JetscribeClient
from schemas import Job, JobStatus, encode
from schemas.api import JobList

STATUSES: Final = get_args(JobStatus)
ISO_SECONDS: Final = "%Y-%m-%d %H:%M:%S"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="list, show, wait for and cancel jobs on a jetscribe gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = jobs.add_subparsers(title="job commands", metavar="COMMAND", required=True)

    listing = actions.add_parser("list", help="jobs, newest first")
    listing.add_argument("--status", choices=STATUSES, help="only jobs in this status")
    listing.add_argument("--limit", type=int, default=50, help="jobs per page (1–500, default 50)")
    listing.add_argument("--cursor", help="continue from a page's next_cursor")
    listing.add_argument("--all", action="store_true", help="every page")
    _common(listing, _list)

    get = actions.add_parser("get", help="one job: its state and, once done, its transcript")
    get.add_argument("job_id")
    _common(get, _get)

    wait = actions.add_parser("wait", help="wait until the jobs end; fails unless every one is done")
    wait.add_argument("job_ids", nargs="+", metavar="job_id")
    _common(wait, _wait)

    cancel = actions.add_parser("cancel", help="cancel queued or running jobs")
    cancel.add_argument("job_ids", nargs="+", metavar="job_id")
    _common(cancel, _cancel)


def _common(
    parser: argparse.ArgumentParser, action: Callable[[argparse.Namespace, JetscribeClient], Awaitable[int]]
) -> None:
    add_connection_options(parser)
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    parser.set_defaults(run_client=lambda args: asyncio.run(_with_client(args, action)))


async def _with_client(
    args: argparse.Namespace, action: Callable[[argparse.Namespace, JetscribeClient], Awaitable[int]]
) -> int:
    async with client_for(args) as client:
        try:
            return await action(args, client)
        except ClientError as exc:
            Console(stderr=True).print(f"jetscribe: {explain(exc, server_of(args))}", markup=False, highlight=False)
            return 1


def _print_json(body: msgspec.Struct) -> None:
    sys.stdout.write(encode(body).decode() + "\n")
    sys.stdout.flush()


async def _list(args: argparse.Namespace, client: JetscribeClient) -> int:
    if args.all:
        page = JobList(jobs=[job async for job in client.jobs(status=args.status, page_size=args.limit)])
    else:
        page = await client.list_jobs(status=args.status, limit=args.limit, cursor=args.cursor)
    if args.json:
        _print_json(page)
        return 0
    table = Table(title=f"jobs on {client.base_url}" + (f" ({args.status})" if args.status else ""))
    for column in ("id", "file", "status", "progress", "created", "language", "audio", "error"):
        table.add_column(column, overflow="fold")
    for job in page.jobs:
        table.add_row(
            job.id,
            Text(job.filename or ""),
            job.status,
            f"{job.progress}%",
            job.created_at.strftime(ISO_SECONDS),
            job.language or "",
            f"{job.duration_secs:.1f} s" if job.duration_secs is not None else "",
            Text(job.error or ""),
        )
    if page.next_cursor:
        table.caption = f"more: --cursor {page.next_cursor}"
    Console().print(table)
    return 0


async def _get(args: argparse.Namespace, client: JetscribeClient) -> int:
    job = await client.get(args.job_id)
    if args.json:
        _print_json(job)
    else:
        _describe(job)
    return 0


async def _wait(args: argparse.Namespace, client: JetscribeClient) -> int:
    errors = Console(stderr=True)

    async def one(job_id: str) -> Job:
        job = await client.wait(job_id)
        if args.json:
            _print_json(job)
        else:
            detail = f": {job.error}" if job.error else ""
            print(f"{job.id} {job.status}{detail}", flush=True)
        return job

    jobs = await asyncio.gather(*(one(job_id) for job_id in args.job_ids))
    unfinished = [job.id for job in jobs if job.status != "done"]
    if unfinished:
        errors.print(f"jetscribe: not done: {', '.join(unfinished)}", markup=False)
        return 1
    return 0


async def _cancel(args: argparse.Namespace, client: JetscribeClient) -> int:
    errors = Console(stderr=True)
    refused = 0
    for job_id in args.job_ids:
        try:
            await client.cancel(job_id)
        except ApiError as exc:
            refused += 1
            errors.print(f"jetscribe: {job_id}: {exc.message}", markup=False, highlight=False)
            continue
        if not args.json:
            print(f"{job_id} cancelled", flush=True)
    return 1 if refused else 0


def _describe(job: Job) -> None:
    console = Console()
    lines = [
        f"job       {job.id}",
        f"file      {job.filename or '(none given)'}",
        f"status    {job.status} ({job.progress}%)",
        f"task      {job.task}, language {job.language or 'detect'}",
        f"created   {job.created_at.strftime(ISO_SECONDS)}",
    ]
    if job.completed_at:
        lines.append(f"ended     {job.completed_at.strftime(ISO_SECONDS)}")
    if job.duration_secs is not None:
        lines.append(f"audio     {job.duration_secs:.1f} s")
    if job.error:
        lines.append(f"error     {job.error}")
    for speaker in job.speakers or []:
        lines.append(f"speaker   {speaker.speaker}: {speaker.speaking_time_s:.1f} s in {speaker.turns} turns")
    for line in lines:
        console.print(line, markup=False, highlight=False)
    for segment in job.segments:
        who = f"{segment.speaker}: " if segment.speaker else ""
        console.print(
            f"[{segment.start:8.2f} → {segment.end:8.2f}] {who}{segment.text.strip()}", markup=False, highlight=False
        )
