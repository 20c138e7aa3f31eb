"""``btic sync``: the schedules that are due, run now (cron-friendly)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from btic.cli.base import Runtime, config_option, echo_json, promise_json
from btic.cli.options import output_options, verbosity_of
from btic.errors import WorkFailed, interruption

if TYPE_CHECKING:
    from btic.config import Config
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

    promise_json(as_json)
    config = runtime.load_config(config_path)
    config.require(schedules=schedules)
    config.require_work()
    names = [n for n in (schedules or config.schedules) if schedules or config.schedules[n].enabled]
    verbosity = verbosity_of(quiet, verbose)
    with failures_reported(config.state_url):
        store = StateStore(config.state_url)  # one connection pool for the check and the run
        try:
            if not schedules and not run_all:
                waiting = _all_waiting(config, store, names)
                if waiting is not None:
                    _say_idle(waiting, verbosity=verbosity, as_json=as_json)
                    return
            from btic.cli.transfers import Output, stopping_on_signals
            from btic.notify import notifiers
            from btic.scheduler import Scheduler

            output = Output(config, verbosity, as_json, quiet_when_ok=True)
            scheduler = Scheduler(
                config,
                runtime.plugins,
                store,
                log=output.log,
                reporter=output.reporter,
                observers=notifiers(config, output.log),
                items_on_console=output.per_item,
            )
            try:
                with output.bars, stopping_on_signals(scheduler.stop) as received:
                    outcomes, notes = scheduler.run_due(names, anyway=bool(schedules) or run_all)
            finally:
                scheduler.close()
        finally:
            store.close()
    if not outcomes:
        _say_idle(notes, verbosity=verbosity, as_json=as_json)
        return
    from btic.statuses import RunStatus
    from btic.transfer import Summary

    total = Summary()
    for outcome in outcomes:
        total.merge(outcome.summary)
    for line in [o.account() for o in outcomes] + notes:
        total.note(line)
    # What was recorded decides: a signal that came after every run had recorded its
    # outcome interrupted nothing, and the exit code must agree with the record.
    interrupted = received and any(o.status == RunStatus.INTERRUPTED for o in outcomes)
    if interrupted:
        total.note(
            f"interrupted by {received[0].name} after the items in hand; the next run "
            "transfers the rest"
        )
    elif received:
        total.note(f"{received[0].name} came after the work was done; nothing was interrupted")
    output.summary(total, loud=bool(received))
    if interrupted:
        raise interruption(received[0])
    if total.failed:
        raise WorkFailed("the run had failures")


def _all_waiting(config: Config, store: StateStore, names: list[str]) -> list[str] | None:
    """When none of ``names`` is due, the line saying when each comes due; else None.

    Nothing due is cron's common case (every minute): it is answered from the state
    database before the transfer engine is imported.
    """
    from btic import schedule

    periods = {name: config.schedules[name].period() for name in names}
    choice = schedule.choose(periods, store.last_slots(periods), datetime.now(timezone.utc))
    return None if choice.due else schedule.waiting_lines(choice, periods)


def _say_idle(notes: list[str], *, verbosity: int, as_json: bool) -> None:
    """Nothing ran: say why where someone reads it (cron mails nothing)."""
    if as_json:
        from btic.transfer import Summary

        idle = Summary()
        for line in notes:
            idle.note(line)
        echo_json(idle.as_json())
    elif verbosity > 0 or (verbosity == 0 and sys.stderr.isatty()):
        for line in notes:
            click.echo(line, err=True)


__all__ = ["sync_command"]
