"""``btic sync``: the schedules that are due, run now (cron-friendly)."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from btic.cli.base import Runtime, config_option
from btic.cli.transfers import output_options, run_requests, verbosity_of
from btic.config import Config
from btic.errors import WorkFailed
from btic.transfer import Summary, TransferRequest

if TYPE_CHECKING:
    from btic.state import StateStore


@click.command("sync")
@config_option
@click.option(
    "--schedule", "schedules", multiple=True, help="Run this schedule now, due or not (repeatable)."
)
@click.option("--all", "run_all", is_flag=True, help="Run every enabled schedule now, due or not.")
@output_options
@click.pass_obj
def sync_command(
    runtime: Runtime,
    config_path: Path | None,
    schedules: tuple[str, ...],
    run_all: bool = False,
    quiet: bool = False,
    verbose: int = 0,
    as_json: bool = False,
) -> None:
    """Run the schedules that are due, incrementally.

    A schedule is due when one of its slots (its period, or its time of day) has
    come since its last run, so a one-minute cron entry gives exactly the
    configured periods, and runs missed while nothing ran coalesce into one.
    Each window starts at what the last run delivered and ends at the
    appliance's present; watermarks move.
    """
    from btic.state import StateStore, failures_reported

    config = runtime.load_config(config_path)
    config.require(schedules=schedules)
    config.require_work()
    names = [n for n in (schedules or config.schedules) if schedules or config.schedules[n].enabled]
    with failures_reported(config.state_url):
        store = StateStore(config.state_url)
        try:
            _sync(
                runtime,
                config,
                store,
                names,
                anyway=bool(schedules) or run_all,
                verbosity=verbosity_of(quiet, verbose),
                as_json=as_json,
            )
        finally:
            store.close()


def _sync(
    runtime: Runtime,
    config: Config,
    store: StateStore,
    names: list[str],
    *,
    anyway: bool,
    verbosity: int,
    as_json: bool,
) -> None:
    from btic import schedule
    from btic.leases import Leases, schedule_lease

    now = datetime.now(timezone.utc)
    periods = {name: config.schedules[name].period() for name in names}
    choice = schedule.choose(periods, store.last_slots(names), now, anyway=anyway)
    notes = [
        f"schedule {name}: not due; next at {when.astimezone(periods[name].zone):%Y-%m-%d %H:%M %Z}"
        for name, when in choice.waiting
    ]
    # A schedule never overlaps itself: one run at a time holds its lease.
    leases = Leases(store, f"sync-{uuid.uuid4()}")
    try:
        due = []
        for name, slot in choice.due:
            holder = leases.acquire(schedule_lease(name))
            if holder is None:
                due.append((name, slot))
            else:
                notes.append(f"schedule {name}: being run by another process ({holder}); not here")
        if not due:
            _say_idle(notes, verbosity=verbosity, as_json=as_json)
            return
        requests = [
            TransferRequest(
                site=transfer.site,
                destinations=tuple(transfer.destinations),
                data_types=tuple(transfer.data),
                incremental=True,
                command_shell_format=transfer.command_shell_format,
            )
            for name, _slot in due
            for transfer in config.schedules[name].transfers
        ]
        try:
            run_requests(
                runtime,
                config,
                "sync",
                requests,
                schedule=",".join(name for name, _ in due),
                verbosity=verbosity,
                as_json=as_json,
                notes=[f"schedule {name}: ran" for name, _ in due] + notes,
            )
        except WorkFailed:
            # An appliance or destination failed (and was reported): the schedule has
            # run, as the guide says. btic's own failures and interruptions raise other
            # errors and leave the slot to run again.
            _record(store, due, "failed", now)
            raise
        _record(store, due, "ok", now)
    finally:
        leases.close()


def _say_idle(notes: list[str], *, verbosity: int, as_json: bool) -> None:
    """Nothing ran: say why where someone reads it (cron mails nothing)."""
    if as_json:
        idle = Summary()
        for line in notes:
            idle.note(line)
        click.echo(json.dumps(idle.as_json(), indent=2))
    elif verbosity > 0 or (verbosity == 0 and sys.stderr.isatty()):
        for line in notes:
            click.echo(line, err=True)


def _record(
    store: StateStore, due: list[tuple[str, datetime]], status: str, started: datetime
) -> None:
    for name, slot in due:
        store.record_schedule_run(name, slot, status, started)


__all__ = ["sync_command"]
