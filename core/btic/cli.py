"""The ``btic`` command line.

Exit codes: 0 success; 1 the work failed (an appliance or destination could
not be reached, an item failed); 2 the configuration or the command line is
wrong.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import click

import btic
from btic.config import Config, default_config_path, format_duration, load_config
from btic.errors import ConfigError
from btic.plugins import PluginManager, PluginWarning

EXIT_FAILED = 1
EXIT_CONFIG = 2

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file [default: $BTIC_CONFIG or ./btic.toml].",
)


class Runtime:
    """What the commands share: the plugins, loaded on first use."""

    def __init__(self) -> None:
        self._plugins: PluginManager | None = None

    @property
    def plugins(self) -> PluginManager:
        if self._plugins is None:
            with warnings.catch_warnings():
                # Reported below as plain lines, not as Python warnings.
                warnings.simplefilter("ignore", PluginWarning)
                self._plugins = PluginManager.from_environment().discover()
            for message in self._plugins.warnings:
                warn(message)
        return self._plugins

    def load_config(self, path: Path | None) -> Config:
        path = path or default_config_path()
        try:
            config = load_config(path, self.plugins)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            count = len(exc.problems)
            click.echo(f"{path}: {count} problem{'s' if count != 1 else ''}", err=True)
            raise SystemExit(EXIT_CONFIG) from None
        for message in config.warnings:
            warn(message)
        return config


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(btic.__version__, prog_name="btic", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Archive BeyondTrust session reports, recordings and backups."""
    ctx.obj = Runtime()


@main.command("plugins")
@click.pass_obj
def plugins_command(runtime: Runtime) -> None:
    """List installed destination plugins as JSON."""
    listing = [info.as_json() for _, info in sorted(runtime.plugins.plugins.items())]
    click.echo(json.dumps(listing, indent=2))


@main.command("check")
@config_option
@click.option("--offline", is_flag=True, help="Validate the configuration only; contact nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the redacted configuration as JSON.")
@click.pass_obj
def check_command(runtime: Runtime, config_path: Path | None, offline: bool, as_json: bool) -> None:
    """Validate the configuration and show what it says, secrets redacted."""
    config = runtime.load_config(config_path)
    if as_json:
        click.echo(json.dumps(config.summary(), indent=2))
    else:
        _print_summary(config)
    click.echo("configuration is valid")


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


@main.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default="btic.toml")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def init_command(path: Path, force: bool) -> None:
    """Write a commented starter configuration to PATH."""
    if path.exists() and not force:
        click.echo(f"error: {path} exists; use --force to replace it", err=True)
        raise SystemExit(EXIT_CONFIG)
    text = resources.files("btic").joinpath("starter.toml").read_text(encoding="utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0600: the file may come to hold secrets.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"wrote {path}")
    click.echo(f"next: edit it, set BTIC_SUPPORT_SECRET, then run: btic check --offline --config {path}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
