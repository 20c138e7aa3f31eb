"""Commands that set btic up: ``plugins``, ``check`` and ``init``."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import click

from btic.cli.base import Runtime, config_option, echo_json, promise_json
from btic.config import Config, format_duration
from btic.errors import BticError, ConfigError, UsageError, WorkFailed


@click.command("plugins")
@click.pass_obj
def plugins_command(runtime: Runtime) -> None:
    """List installed destination plugins as JSON."""
    listing = [info.as_json() for _, info in sorted(runtime.plugins.plugins.items())]
    click.echo(json.dumps(listing, indent=2))


@click.command("check")
@config_option
@click.option("--offline", is_flag=True, help="Validate the configuration only; contact nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the redacted configuration as JSON.")
@click.option("--site", "sites", multiple=True, help="Check only this site (repeatable).")
@click.option(
    "--dest", "destinations", multiple=True, help="Check only this destination (repeatable)."
)
@click.pass_obj
def check_command(
    runtime: Runtime,
    config_path: Path | None,
    offline: bool,
    as_json: bool,
    sites: tuple[str, ...],
    destinations: tuple[str, ...],
) -> None:
    """Validate the configuration; unless --offline, test every site's
    credentials, permissions and clock as the schedules need them, every
    destination, and with the celery executor the broker and the shared state
    database (run it on each worker machine)."""
    from btic.checks import (
        check_destinations,
        check_executor,
        check_site,
        offline_problems,
    )

    promise_json(as_json)
    # Offline, a secret that cannot be read is one of the problems listed, not a stop.
    config = runtime.load_config(config_path, secrets=not offline)
    config.require(sites=sites, destinations=destinations)
    config.require_work()
    if offline:
        problems = offline_problems(config, runtime.plugins)
        if as_json:
            echo_json(
                {"ok": not problems, "problems": [str(p) for p in problems], **config.summary()}
            )
        else:
            _print_summary(config)
        if problems:
            raise ConfigError(problems, source=config.path)
        # Machines read stdout (--json); people read this either way.
        click.echo("configuration is valid", err=as_json)
        return

    failed = False
    # --site and --dest narrow the check to what they name (the guide's "Test" buttons).
    for name in sites if (sites or destinations) else tuple(config.sites):
        for result in check_site(config, name):
            click.echo(result.line())
            failed = failed or not result.ok
    if destinations or not sites:
        for result in check_destinations(config, runtime.plugins, destinations or None):
            click.echo(result.line())
            failed = failed or not result.ok
    if not (sites or destinations):
        for result in check_executor(config):
            click.echo(result.line())
            failed = failed or not result.ok
    if failed:
        click.echo("check failed: fix the lines marked FAIL and run btic check again", err=True)
        raise WorkFailed("checks failed")
    click.echo("all checks passed")


def _print_summary(config: Config) -> None:
    summary = config.summary()
    click.echo(f"config: {summary['config']}")
    click.echo(f"state:  {summary['state']['url']}")
    click.echo("sites:")
    for name, site in summary["sites"].items():
        click.echo(
            f"  {name}: {site['scheme']}://{site['host']} product={site['product']} "
            f"client_id={site['client_id']} client_secret={site['client_secret']}"
        )
    click.echo("destinations:")
    for name, destination in summary["destinations"].items():
        settings = " ".join(
            f"{key}={_short(value)}"
            for key, value in destination.items()
            if key != "plugin" and value not in (None, {}, [])
        )
        click.echo(f"  {name}: plugin={destination['plugin']} {settings}".rstrip())
    click.echo("schedules:")
    for name, schedule in config.schedules.items():
        when = f"every {format_duration(schedule.every)}"
        if schedule.at:
            when += f" at {schedule.at.strftime('%H:%M')}"
        if not schedule.enabled:
            when += " (disabled)"
        click.echo(f"  {name}: {when}")
        for transfer in schedule.transfers:
            click.echo(
                f"    {transfer.site} -> {', '.join(transfer.destinations)}: "
                f"{', '.join(d.value for d in transfer.data)}"
            )


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


@click.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default="btic.toml")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def init_command(path: Path, force: bool) -> None:
    """Write a commented starter configuration to PATH (- for standard output)."""
    text = resources.files("btic").joinpath("starter.toml").read_text(encoding="utf-8")
    if str(path) == "-":
        click.echo(text, nl=False)
        return
    if path.exists() and not force:
        raise UsageError(f"{path} exists; use --force to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600: the file may come to hold secrets.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise BticError(
            f"cannot write {path}: {exc.strerror or exc}; choose a directory you can write to"
        ) from None
    click.echo(f"wrote {path}")
    click.echo(
        f"next: edit it, set BTIC_SUPPORT_SECRET, then run: btic check --offline --config {path}"
    )
