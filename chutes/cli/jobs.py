"""Commands of the ``jobs`` group: ``list``, ``submit``, ``run`` and ``show``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from chutes.chute.registry import registry_of

if TYPE_CHECKING:
    from chutes.chute import Chute
    from chutes.jobs.store import Backend, Run


class JobCommandError(ValueError):
    """A ``jobs`` command was given something it cannot use (an unknown job or run, bad input)."""


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``jobs`` command group to the parser."""
    group = commands.add_parser("jobs", help="list, submit, run and inspect a chute's jobs")
    actions = group.add_subparsers(dest="jobs_command", metavar="ACTION", parser_class=type(group))
    actions.required = True

    listing = actions.add_parser("list", help="list the jobs of a chute with their schedules")
    listing.add_argument("target", metavar="TARGET", help="a spec file or module:attr")
    listing.set_defaults(handler=list_jobs)

    for name, handler, text in (
        ("submit", submit_job, "queue a run in the store for a server to execute"),
        ("run", run_job, "execute one run in the foreground, with retries and timeout; exit 1 if it fails"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("target", metavar="TARGET", help="a spec file or module:attr")
        action.add_argument("name", metavar="NAME", help="the job's name")
        action.add_argument("--input", default="{}", metavar="JSON", help="the job's input as a JSON object")
        action.set_defaults(handler=handler)

    show = actions.add_parser("show", help="show one run from the store")
    show.add_argument("target", metavar="TARGET", help="a spec file or module:attr")
    show.add_argument("run_id", metavar="RUN_ID")
    show.set_defaults(handler=show_run)


def _load(target: str) -> Chute:
    from chutes.target import load_target

    return load_target(target)


def _service(chute: Chute) -> Any:
    from prometheus_client import CollectorRegistry

    from chutes.jobs.service import JobService
    from chutes.settings import Settings

    return JobService(chute, Settings.load(), CollectorRegistry())


def _backend(service: Any) -> Backend:
    """The store's synchronous backend: a command makes one call, with no event loop to keep free."""
    from chutes.jobs.store import open_backend

    return open_backend(service.settings.database_url or None, service.settings.data_dir, service.chute.name)


def _check_job(chute: Chute, name: str) -> None:
    if name not in registry_of(chute).jobs:
        known = ", ".join(sorted(registry_of(chute).jobs)) or "none"
        raise JobCommandError(f"job {name!r} not found in chute {chute.name} (its jobs: {known})")


def _input_error(exc: ValidationError) -> JobCommandError:
    lines = [
        f"--input {'.'.join(str(part) for part in error['loc']) or '(body)'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    ]
    return JobCommandError("\n".join(lines))


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def list_jobs(args: argparse.Namespace) -> int:
    """``jobs list TARGET``: one line per job with its schedule and next run."""
    service = _service(_load(args.target))
    rows = [("NAME", "SCHEDULE", "NEXT RUN (UTC)", "RETRIES", "TIMEOUT")]
    for job in service.definitions():
        timeout = "-" if job["timeout"] is None else f"{job['timeout']:g}s"
        rows.append((job["name"], job["schedule"] or "-", job["next_run"] or "-", str(job["retry_count"]), timeout))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def submit_job(args: argparse.Namespace) -> int:
    """``jobs submit TARGET NAME``: queue a run (trigger ``cli``) and print it."""
    from chutes.jobs.service import input_json

    chute = _load(args.target)
    _check_job(chute, args.name)
    service = _service(chute)
    job = registry_of(chute).jobs[args.name]
    try:
        stored = input_json(job, args.input.encode())
    except ValidationError as exc:
        raise _input_error(exc) from None
    store = _backend(service)
    try:
        run = store.submit(job.name, stored, job.max_attempts, "cli", service.clock.time())
    finally:
        store.close()
    _print_json(run.to_json())
    return 0


def run_job(args: argparse.Namespace) -> int:
    """``jobs run TARGET NAME``: run it now with the chute's startup and shutdown hooks; print the result."""
    from chutes.jobs.service import input_json

    chute = _load(args.target)
    _check_job(chute, args.name)
    service = _service(chute)
    try:
        input_json(service.job(args.name), args.input.encode())  # checked before the startup hooks run
    except ValidationError as exc:
        raise _input_error(exc) from None
    run: Run = asyncio.run(_run_with_hooks(chute, service, args.name, args.input.encode()))
    if run.status == "completed":
        _print_json(run.result)
        return 0
    reason = "" if run.error is None else f": {run.error}"  # a run cancelled by request has no error
    print(f"error: job {run.name} run {run.id} {run.status} after {run.attempts} attempt(s){reason}", file=sys.stderr)
    return 1


async def _run_with_hooks(chute: Chute, service: Any, name: str, body: bytes) -> Run:
    from chutes.invoke import run_hooks

    await run_hooks(registry_of(chute).startup_hooks, chute)
    try:
        run: Run = await service.run_once(name, body)
        return run
    finally:
        await run_hooks(registry_of(chute).shutdown_hooks, chute)


def show_run(args: argparse.Namespace) -> int:
    """``jobs show TARGET RUN_ID``: print one run as JSON."""
    service = _service(_load(args.target))
    if not service.settings.database_url and not service.path.exists():
        raise JobCommandError(f"run {args.run_id!r} not found: no run store at {service.path}")
    store = _backend(service)
    try:
        run = store.get(args.run_id)
    finally:
        store.close()
    if run is None:
        raise JobCommandError(f"run {args.run_id!r} not found in {store.where}")
    _print_json(run.to_json())
    return 0
