"""``btic sync``: the schedules that are due, run now (cron-friendly)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from btic.cli.base import Runtime, config_option
from btic.cli.transfers import _verbosity, output_options, run_requests
from btic.errors import WorkFailed
from btic.transfer import Summary, TransferRequest


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
    from btic import schedule
    from btic.state import StateStore, failures_reported

    config = runtime.load_config(config_path)
    config.require(schedules=schedules)
    config.require_work()
    names = [n for n in (schedules or config.schedules) if schedules or config.schedules[n].enabled]
    now = datetime.now(timezone.utc)
    with failures_reported(config.state_url):
        store = StateStore(config.state_url)
        try:
            last = store.last_slots(names)
        finally:
            store.close()
    periods = {name: config.schedules[name].period() for name in names}
    choice = schedule.choose(periods, last, now, anyway=bool(schedules) or run_all)
    verbosity = _verbosity(quiet, verbose)
    waiting = [
        f"schedule {name}: not due; next at {when.astimezone(periods[name].zone):%Y-%m-%d %H:%M %Z}"
        for name, when in choice.waiting
    ]
    if not choice.due:
        if as_json:
            idle = Summary()
            for line in waiting:
                idle.note(line)
            click.echo(json.dumps(idle.as_json(), indent=2))
        elif verbosity > 0 or (verbosity == 0 and sys.stderr.isatty()):
            for line in waiting:
                click.echo(line, err=True)
        return
    requests = [
        TransferRequest(
            site=transfer.site,
            destinations=tuple(transfer.destinations),
            data_types=tuple(transfer.data),
            incremental=True,
            command_shell_format=transfer.command_shell_format,
        )
        for name, _slot in choice.due
        for transfer in config.schedules[name].transfers
    ]
    try:
        run_requests(
            runtime,
            config,
            "sync",
            requests,
            schedule=",".join(name for name, _ in choice.due),
            verbosity=verbosity,
            as_json=as_json,
            notes=[f"schedule {name}: ran" for name, _ in choice.due] + waiting,
        )
    except WorkFailed:
        # An appliance or destination failed (and was reported): the schedule has run,
        # as the guide says. btic's own failures and interruptions raise other errors
        # and leave the slot to run again.
        _record(config.state_url, choice.due, "failed", now)
        raise
    _record(config.state_url, choice.due, "ok", now)


def _record(url: str, due: list[tuple[str, datetime]], status: str, started: datetime) -> None:
    from btic.state import StateStore, failures_reported

    with failures_reported(url):
        store = StateStore(url)
        try:
            for name, slot in due:
                store.record_schedule_run(name, slot, status, started)
        finally:
            store.close()


__all__ = ["sync_command"]
