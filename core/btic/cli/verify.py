"""``btic verify``: prove the archive is intact, against the ledger."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from pathlib import Path

import click

from btic.cli.base import Runtime, config_option, echo_json, promise_json
from btic.cli.transfers import parse_moment
from btic.errors import WorkFailed
from btic.types import VerifyFinding


@click.command("verify")
@config_option
@click.option("--dest", "destinations", multiple=True, help="Only this destination (repeatable).")
@click.option("--site", default=None, help="Only items from this site.")
@click.option(
    "--since", default=None, help="Only items of sessions that ended since (2d, ISO time)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON object.")
@click.pass_obj
def verify_command(
    runtime: Runtime,
    config_path: Path | None,
    destinations: tuple[str, ...],
    site: str | None,
    since: str | None,
    as_json: bool,
) -> None:
    """Check every delivered item against the ledger: missing, changed, unexpected.

    Each item the ledger says a destination holds is read back (size and
    sha256); files the destination holds that the ledger does not know are
    listed too. Exit 1 when anything is found.
    """
    from datetime import datetime, timedelta, timezone

    from btic.state import StateStore, failures_reported
    from btic.verify import verify

    promise_json(as_json)
    # Reads the archive and the ledger: a destination's credentials are read when
    # it is opened, the appliances' never.
    config = runtime.load_config(config_path, secrets=False)
    config.require(sites=[site] if site else [], destinations=destinations)
    moment = None if since is None else parse_moment(since, "--since")
    cutoff = datetime.now(timezone.utc) - moment if isinstance(moment, timedelta) else moment
    progress: AbstractContextManager[object] = nullcontext()
    advance: Callable[[], None] = _nothing
    if sys.stderr.isatty() and not as_json:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn

        bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.completed} items checked"),
            console=Console(stderr=True),
            transient=True,
        )
        task = bar.add_task("verify", total=None)
        progress = bar

        def advance() -> None:
            bar.advance(task)

    found: list[dict[str, str | None]] = []

    def report(destination: str, finding: VerifyFinding) -> None:
        if as_json:
            found.append({"destination": destination, **asdict(finding)})
            return
        key = f" ({finding.item_key})" if finding.item_key else ""
        click.echo(f"{finding.kind:<10} {destination}: {finding.location}{key}: {finding.detail}")

    with failures_reported(config.state_url):
        state = StateStore(config.state_url)
        try:
            with progress:
                reports = verify(
                    config,
                    runtime.plugins,
                    state,
                    destinations=destinations or tuple(config.destinations),
                    site=site,
                    since=cutoff,
                    on_finding=report,
                    on_item=advance,
                )
        finally:
            state.close()
    failed = any(result.failed for result in reports)
    if as_json:
        echo_json(
            {
                "ok": not failed,
                "findings": found,
                "destinations": [result.as_json() for result in reports],
            }
        )
    for result in reports:
        if result.error is not None:
            click.echo(f"error: destination {result.destination}: {result.error}", err=True)
            continue
        counts = ", ".join(f"{n} {kind}" for kind, n in result.findings.items())
        click.echo(f"{result.destination}: {result.checked} items checked; {counts}", err=True)
        for note in result.notes:
            click.echo(f"note: {result.destination}: {note}", err=True)
    if failed:
        raise WorkFailed("verify found problems")


def _nothing() -> None:
    pass
