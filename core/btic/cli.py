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
@click.option("--site", "sites", multiple=True, help="Check only this site (repeatable).")
@click.pass_obj
def check_command(
    runtime: Runtime, config_path: Path | None, offline: bool, as_json: bool, sites: tuple[str, ...]
) -> None:
    """Validate the configuration; unless --offline, test every site's
    credentials, permissions and clock as the schedules need them."""
    config = runtime.load_config(config_path)
    if offline:
        if as_json:
            click.echo(json.dumps(config.summary(), indent=2))
        else:
            _print_summary(config)
        click.echo("configuration is valid")
        return
    from btic.checks import check_site

    unknown = [s for s in sites if s not in config.sites]
    if unknown:
        click.echo(f"error: no site named {', '.join(unknown)}; defined: {', '.join(config.sites)}", err=True)
        raise SystemExit(EXIT_CONFIG)
    failed = False
    for name in sites or tuple(config.sites):
        for result in check_site(config, name):
            click.echo(result.line())
            failed = failed or not result.ok
    if failed:
        click.echo("check failed: fix the lines marked FAIL and run btic check again", err=True)
        raise SystemExit(EXIT_FAILED)
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


@main.command("sim")
@click.option("--product", type=click.Choice(["rs", "pa"]), default="rs", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="0 picks a free port.")
@click.option("--tls/--no-tls", default=True, show_default=True)
@click.option("--sessions", type=int, default=40, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--recording-size", type=int, default=256 * 1024, show_default=True, help="Bytes per session recording.")
@click.option("--backup-size", type=int, default=512 * 1024, show_default=True)
@click.option("--client-id", default=None, help="Generated when not given.")
@click.option("--client-secret", default=None, help="Generated when not given.")
@click.option("--faults", default=None, help="e.g. 'latency=0.2,500:3,reset:1@recording,clock=-3600'.")
@click.option("--language", default="en", show_default=True, help="Language of 'no matching data' answers.")
@click.option("--deny", "denied", multiple=True, help="A permission the API account lacks (perm_backup...).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the CA certificate is written (a temporary directory by default).")
@click.option("--site-name", default="sim", show_default=True, help="Name used in the printed [sites.NAME].")
def sim_command(product: str, host: str, port: int, tls: bool, sessions: int, seed: int, recording_size: int,
                backup_size: int, client_id: str | None, client_secret: str | None, faults: str | None,
                language: str, denied: tuple[str, ...], state_dir: Path | None, site_name: str) -> None:
    """Serve a simulated RS or PA appliance until interrupted."""
    import signal
    import threading

    from btic.sim import FaultPlan, SimulatedAppliance

    try:
        plan = FaultPlan.parse(faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    appliance = SimulatedAppliance(
        product, host=host, port=port, tls=tls, sessions=sessions, seed=seed, recording_size=recording_size,
        backup_size=backup_size, client_id=client_id, client_secret=client_secret, faults=plan,
        language=language, permissions={name: "0" for name in denied}, state_dir=state_dir,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with appliance:
        click.echo(f"simulated {product.upper()} appliance at {appliance.url}")
        click.echo(f"client id:     {appliance.client_id}")
        click.echo(f"client secret: {appliance.client_secret}")
        if appliance.ca_path:
            click.echo(f"CA certificate: {appliance.ca_path}")
        click.echo("\n# paste into btic.toml:")
        click.echo(appliance.site_toml(site_name), nl=False)
        click.echo("\n(Ctrl-C to stop)")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


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
