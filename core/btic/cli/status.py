"""``btic status``: the schedules, what each destination holds and lacks, what runs now;
``btic retry``: the items given up, put back in the queue."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from btic.cli.base import Runtime, config_option, echo_json, promise_json
from btic.errors import WorkFailed

#: How the text names a ledger status where its stored name would mislead.
STATUS_WORDS = {"no_recording": "without a recording", "given_up": "given up"}


@click.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@click.pass_obj
def status_command(runtime: Runtime, config_path: Path | None, as_json: bool) -> None:
    """Each schedule's period, last run, result and next run; for each site,
    destination and data type its watermark, items by status, the items given up
    and the latest failures (with their errors); the runs in progress and the
    leases held; with the celery executor, the tasks queued, running, retried and lost per
    site."""
    from btic.config import format_duration
    from btic.state import StateStore, failures_reported
    from btic.state.overview import read_overview

    promise_json(as_json)
    config = runtime.load_config(config_path, secrets=False)
    now = datetime.now(timezone.utc)
    with failures_reported(config.state_url):
        store = StateStore(config.state_url)
        try:
            overview = read_overview(store)
        finally:
            store.close()
    schedules = []
    for name, settings in config.schedules.items():
        period = settings.period()
        last = overview.schedules.get(name)
        due = period.is_due(last.last_slot if last else None, now)
        schedules.append(
            {
                "name": name,
                "every": format_duration(settings.every),
                "at": settings.at.strftime("%H:%M") if settings.at else None,
                "enabled": settings.enabled,
                "last_run": _time(last.finished_at) if last else None,
                "last_result": last.status if last else None,
                "next_run": "now (due)" if due else _time(period.next_slot(now)),
            }
        )
    report: dict[str, Any] = {
        "ok": not overview.failing,
        "schedules": schedules,
        "destinations": [
            {
                **asdict(stream),
                "watermark": _time(stream.watermark),
                "given_up": [_item(i) for i in stream.given_up],
                "failing": [_item(i) for i in stream.failing],
            }
            for stream in overview.streams
        ],
        "running": [
            {**asdict(run), "started_at": _time(run.started_at)} for run in overview.running
        ],
        "leases": [
            {**asdict(lease), "expires_at": _time(lease.expires_at)} for lease in overview.leases
        ],
        "tasks": [asdict(counts) for counts in overview.tasks],
    }
    if as_json:
        echo_json(report)
    else:
        _print(report)
    if overview.failing:
        raise WorkFailed("some items are failing or given up (listed above)")


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _item(item: Any) -> dict[str, Any]:
    return {**asdict(item), "updated_at": _time(item.updated_at)}


def _print(report: dict[str, Any]) -> None:
    click.echo("schedules:")
    for entry in report["schedules"]:
        when = f" at {entry['at']}" if entry["at"] else ""
        state = "" if entry["enabled"] else " (disabled)"
        click.echo(
            f"  {entry['name']}: every {entry['every']}{when}{state}; last run "
            f"{entry['last_run'] or 'never'}"
            + (f" ({entry['last_result']})" if entry["last_result"] else "")
            + f"; next {entry['next_run']}"
        )
    click.echo("destinations:")
    for stream in report["destinations"]:
        counts = ", ".join(
            f"{n} {STATUS_WORDS.get(status, status)}"
            for status, n in sorted(stream["counts"].items())
        )
        click.echo(
            f"  {stream['site']} -> {stream['destination']} {stream['data_type']}: "
            f"{counts or 'nothing yet'}; watermark {stream['watermark'] or 'none'}"
        )
        for label, key in (("given up", "given_up"), ("failing", "failing")):
            for item in stream[key]:
                click.echo(f"    {label}: {item['item_key']}: {item['error']}")
    for run in report["running"]:
        click.echo(
            f"running: {run['kind']} {run['schedule'] or ''} since {run['started_at']} "
            f"({run['host']}:{run['pid']})"
        )
    for lease in report["leases"]:
        click.echo(f"lease: {lease['name']} held by {lease['owner']} until {lease['expires_at']}")
    for counts in report["tasks"]:
        click.echo(
            f"tasks of {counts['site']}: {counts['queued']} queued, {counts['running']} running, "
            f"{counts['retried']} waiting to retry (site busy)"
            + (
                f", {counts['lost']} lost (their worker stopped answering; the broker gives "
                "them to another)"
                if counts["lost"]
                else ""
            )
        )


@click.command("retry")
@config_option
@click.option("--site", default=None, help="Only this site's items.")
@click.option("--dest", "destination", default=None, help="Only this destination's items.")
@click.pass_obj
def retry_command(
    runtime: Runtime, config_path: Path | None, site: str | None, destination: str | None
) -> None:
    """Put the items given up back in the queue: the next ``btic sync`` (or the
    daemon's next run) lists and delivers them again."""
    from btic.state import StateStore, failures_reported

    config = runtime.load_config(config_path, secrets=False)
    config.require(
        sites=[site] if site is not None else [],
        destinations=[destination] if destination is not None else [],
    )
    with failures_reported(config.state_url):
        store = StateStore(config.state_url)
        try:
            requeued, left = store.requeue_given_up(site=site, destination=destination)
        finally:
            store.close()
    if not requeued and not left:
        click.echo("nothing is given up" + _scope(site, destination))
        return
    counts: dict[tuple[str, str, str], int] = {}
    for entry in requeued:
        key = (entry.site, entry.destination, entry.data_type)
        counts[key] = counts.get(key, 0) + 1
    for (item_site, item_destination, data_type), count in sorted(counts.items()):
        click.echo(f"re-queued {count} {data_type} of {item_site} for {item_destination}")
    if requeued:
        click.echo("the next btic sync (or btic run) delivers them")
    for entry in left:
        how = (
            "each run takes a new backup"
            if entry.data_type == "backup"
            else f"btic transfer --site {entry.site} --dest {entry.destination} "
            f"--type {entry.data_type} --lsid {entry.item_key.partition('#')[0]} --force"
        )
        click.echo(
            f"left given up: {entry.site} -> {entry.destination} {entry.data_type} "
            f"{entry.item_key}: no time to list it by; {how}",
            err=True,
        )


def _scope(site: str | None, destination: str | None) -> str:
    parts = [f"site {site}" if site else "", f"destination {destination}" if destination else ""]
    named = " and ".join(part for part in parts if part)
    return f" for {named}" if named else ""


__all__ = ["retry_command", "status_command"]
