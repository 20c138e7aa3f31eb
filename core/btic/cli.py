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
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import click

import btic
from btic.config import Config, default_config_path, format_duration, load_config, parse_duration
from btic.errors import ConfigError
from btic.plugins import PluginManager, PluginWarning
from btic.types import DataType

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
    from btic.checks import check_destinations, check_site

    unknown = [s for s in sites if s not in config.sites]
    if unknown:
        click.echo(
            f"error: no site named {', '.join(unknown)}; defined: {', '.join(config.sites)}",
            err=True,
        )
        raise SystemExit(EXIT_CONFIG)
    failed = False
    for name in sites or tuple(config.sites):
        for result in check_site(config, name):
            click.echo(result.line())
            failed = failed or not result.ok
    if not sites:
        for result in check_destinations(config, runtime.plugins):
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


# -- moving data -------------------------------------------------------------------


def _data_types(values: tuple[str, ...]) -> tuple[DataType, ...]:
    chosen: list[DataType] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                chosen.append(DataType(part))
    return tuple(dict.fromkeys(chosen))


def _parse_moment(value: str, option: str) -> datetime | timedelta:
    """An ISO time (UTC unless it says otherwise) or a period back from the appliance's now."""
    try:
        return parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            "use an ISO time (2024-05-01T08:00:00Z) or a period back from now (30m, 2h, 1d)",
            param_hint=option,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class _Run:
    """State, engine and reporting for one command that moves data."""

    def __init__(self, runtime: Runtime, config: Config, kind: str, schedule: str | None = None):
        from btic import logs
        from btic.config import iter_secrets
        from btic.state import StateError, StateStore
        from btic.transfer import Engine

        self.config = config
        self.interactive = sys.stderr.isatty()
        self.log = logs.configure(
            config.logging.level, [s.get_secret_value() for _, s in iter_secrets(config)]
        )
        try:
            self.state = StateStore(config.state_url)
        except StateError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(EXIT_FAILED) from None
        from btic.state import safe_url

        self.state_label = safe_url(config.state_url)
        self.run_id = self.state.start_run(kind, schedule)
        self.bars = None
        if self.interactive:
            from rich.console import Console

            from btic.progress import BarReporter

            self.bars = BarReporter(Console(stderr=True))
            reporter: Any = self.bars
        else:
            from btic.progress import LogReporter

            reporter = LogReporter(self.log)
        self.engine = Engine(
            config, runtime.plugins, self.state, run_id=self.run_id, reporter=reporter, log=self.log
        )

    def __enter__(self) -> _Run:
        if self.bars is not None:
            self.bars.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if self.bars is not None:
            self.bars.__exit__(exc_type, exc, traceback)
        self.engine.close()
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            # The ledger holds every delivery recorded before the failure; the
            # next run redelivers the rest (destinations are idempotent).
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            click.echo(
                f"error: state database {self.state_label}: {reason}; fix it and run again: "
                "nothing recorded is lost",
                err=True,
            )
            raise SystemExit(EXIT_FAILED) from None

    def finish(self, summary: Any, dry_run: bool = False) -> None:
        from btic.progress import summary_table, summary_text

        if dry_run:
            for (destination, data_type), items in sorted(summary.planned.items()):
                click.echo(f"would transfer {len(items)} {data_type} to {destination}")
                for item in items[:50]:
                    click.echo(f"  {item}")
                if len(items) > 50:
                    click.echo(f"  ... and {len(items) - 50} more")
        else:
            if self.interactive:
                from rich.console import Console

                Console().print(summary_table(summary))
            else:
                click.echo(summary_text(summary))
        for message in dict.fromkeys(summary.notes):
            click.echo(f"note: {message}", err=True)
        for message in summary.given_up:
            click.echo(f"given up: {message}", err=True)
        problems = list(dict.fromkeys(summary.problems))
        for message in problems[:20]:
            click.echo(f"error: {message}", err=True)
        if len(problems) > 20:
            click.echo(f"error: ... and {len(problems) - 20} more problems (see the log)", err=True)
        status = "failed" if summary.failed else "ok"
        from sqlalchemy.exc import SQLAlchemyError

        try:
            self.state.finish_run(self.run_id, status, summary_text(summary))
        except SQLAlchemyError as exc:
            self.__exit__(type(exc), exc, None)
        self.state.close()
        if summary.failed:
            raise SystemExit(EXIT_FAILED)


def _configure_or_exit(run: _Run, destinations: Any) -> None:
    try:
        run.engine.configure(destinations)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(EXIT_CONFIG) from None


@main.command("transfer")
@config_option
@click.option("--site", required=True, help="The site to transfer from.")
@click.option(
    "--dest", "destinations", multiple=True, required=True, help="A destination (repeatable)."
)
@click.option(
    "--type",
    "types",
    multiple=True,
    required=True,
    help="A data type: "
    + ", ".join(dt.value for dt in DataType)
    + " (repeatable, or comma-separated).",
)
@click.option(
    "--since",
    default=None,
    help="Sessions that ended at or after: ISO time, or a period back (2h, 1d).",
)
@click.option("--until", default=None, help="... and at or before (default: now).")
@click.option(
    "--start-date",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="As in the vendor's API tester: sessions that ended on or after this day (UTC) ...",
)
@click.option("--duration", type=int, default=None, help="... within this many days (0: to now).")
@click.option(
    "--lsid", "lsids", multiple=True, help="A session id (repeatable) instead of a window."
)
@click.option("--force", is_flag=True, help="Deliver again what the ledger says was delivered.")
@click.option("--dry-run", is_flag=True, help="List what would be transferred; move nothing.")
@click.pass_obj
def transfer_command(
    runtime: Runtime,
    config_path: Path | None,
    site: str,
    destinations: tuple[str, ...],
    types: tuple[str, ...],
    since: str | None,
    until: str | None,
    start_date: datetime | None,
    duration: int | None,
    lsids: tuple[str, ...],
    force: bool,
    dry_run: bool,
) -> None:
    """Transfer a window or given sessions now (the vendor's API Tester).

    Watermarks do not move: scheduled transfers are unaffected.
    """
    from btic.appliance.reports import DateWindow, RelativeWindow
    from btic.transfer import TransferRequest

    config = runtime.load_config(config_path)
    try:
        data_types = _data_types(types)
    except ValueError as exc:
        raise click.BadParameter(
            f"{exc}; allowed: {', '.join(dt.value for dt in DataType)}", param_hint="--type"
        ) from None
    _require_known(config, site, destinations)
    selections = sum(
        1 for chosen in (since is not None, start_date is not None, bool(lsids)) if chosen
    )
    only_backups = set(data_types) == {DataType.BACKUP}
    if selections > 1 or (selections == 0 and not only_backups):
        raise click.UsageError(
            "give exactly one of --since [--until], --start-date [--duration], or --lsid "
            "(a backup needs none)"
        )
    window: Any = None
    if since is not None:
        window = RelativeWindow(
            _parse_moment(since, "--since"),
            None if until is None else _parse_moment(until, "--until"),
        )
    elif start_date is not None:
        window = DateWindow("end", start_date.date(), duration or 0)
    _check_capabilities(runtime, config, destinations, data_types)
    request = TransferRequest(
        site=site,
        destinations=destinations,
        data_types=data_types,
        window=window,
        lsids=lsids,
        force=force,
        dry_run=dry_run,
    )
    with _Run(runtime, config, "transfer") as run:
        _configure_or_exit(run, destinations)
        summary = run.engine.run(request)
    run.finish(summary, dry_run=dry_run)


@main.command("sync")
@config_option
@click.option("--schedule", "schedules", multiple=True, help="Only this schedule (repeatable).")
@click.pass_obj
def sync_command(runtime: Runtime, config_path: Path | None, schedules: tuple[str, ...]) -> None:
    """Run the configured schedules' transfers now, incrementally.

    Each window starts at what the last run delivered and ends at the
    appliance's present; watermarks move. Run it from cron, or let the daemon
    call it.
    """
    from btic.transfer import Summary, TransferRequest

    config = runtime.load_config(config_path)
    unknown = [s for s in schedules if s not in config.schedules]
    if unknown:
        click.echo(
            f"error: no schedule named {', '.join(unknown)}; defined: "
            f"{', '.join(config.schedules)}",
            err=True,
        )
        raise SystemExit(EXIT_CONFIG)
    chosen = [
        n for n in (schedules or config.schedules) if schedules or config.schedules[n].enabled
    ]
    total = Summary()
    with _Run(runtime, config, "sync", ",".join(chosen)) as run:
        for name in chosen:
            for transfer in config.schedules[name].transfers:
                _configure_or_exit(run, transfer.destinations)
                request = TransferRequest(
                    site=transfer.site,
                    destinations=tuple(transfer.destinations),
                    data_types=tuple(transfer.data),
                    incremental=True,
                )
                total.merge(run.engine.run(request))
    run.finish(total)


@main.command("import-xml")
@config_option
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--dest", "destinations", multiple=True, required=True, help="A destination (repeatable)."
)
@click.option(
    "--type",
    "types",
    multiple=True,
    default=("session",),
    show_default=True,
    help="Data types to deliver from these reports; recordings are fetched from --site.",
)
@click.option(
    "--site", default=None, help="The site the reports came from (needed for recordings)."
)
@click.option("--host", default=None, help="The appliance host name, when no --site is given.")
@click.option(
    "--product", type=click.Choice(["rs", "pa"]), default=None, help="Default: the site's, else rs."
)
@click.option("--force", is_flag=True, help="Deliver again what the ledger says was delivered.")
@click.pass_obj
def import_xml_command(
    runtime: Runtime,
    config_path: Path | None,
    files: tuple[Path, ...],
    destinations: tuple[str, ...],
    types: tuple[str, ...],
    site: str | None,
    host: str | None,
    product: str | None,
    force: bool,
) -> None:
    """Deliver previously downloaded session report files (the vendor's "XML Files" tab)."""
    from btic.transfer import import_reports

    config = runtime.load_config(config_path)
    try:
        data_types = _data_types(types)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--type") from None
    _require_known(config, site, destinations)
    needs_site = [dt for dt in data_types if dt not in (DataType.SESSION, DataType.PRESENTATION)]
    if needs_site and site is None:
        raise click.UsageError(
            f"{', '.join(dt.value for dt in needs_site)} must be fetched from an appliance: "
            "give --site"
        )
    if DataType.BACKUP in data_types:
        raise click.UsageError(
            "backups do not come from report files; use btic transfer --type backup"
        )
    if site is None and host is None:
        raise click.UsageError("give --site, or --host with the appliance's host name")
    _check_capabilities(runtime, config, destinations, data_types)
    with _Run(runtime, config, "import") as run:
        _configure_or_exit(run, destinations)
        summary = import_reports(
            run.engine,
            files,
            site=site,
            host=host,
            product=product,
            destinations=destinations,
            data_types=data_types,
            force=force,
        )
    run.finish(summary)


def _require_known(config: Config, site: str | None, destinations: tuple[str, ...]) -> None:
    if site is not None and site not in config.sites:
        click.echo(
            f"error: no site named {site!r}; defined: {', '.join(config.sites) or 'none'}", err=True
        )
        raise SystemExit(EXIT_CONFIG)
    missing = [d for d in destinations if d not in config.destinations]
    if missing:
        click.echo(
            f"error: no destination named {', '.join(map(repr, missing))}; defined: "
            f"{', '.join(config.destinations) or 'none'}",
            err=True,
        )
        raise SystemExit(EXIT_CONFIG)


def _check_capabilities(
    runtime: Runtime,
    config: Config,
    destinations: tuple[str, ...],
    data_types: tuple[DataType, ...],
) -> None:
    problems = []
    for name in destinations:
        plugin = runtime.plugins.get(config.destinations[name].plugin)
        for data_type in data_types:
            if data_type not in plugin.data_types:
                problems.append(
                    f"destination {name!r} (plugin {plugin.name}) cannot receive "
                    f"{data_type.value!r}; "
                    f"it receives: {', '.join(sorted(d.value for d in plugin.data_types))}"
                )
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(EXIT_CONFIG)


@main.command("demo")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("btic-demo"),
    show_default=True,
    help="Where the configuration, state and archive go.",
)
@click.option("--sessions", type=int, default=30, show_default=True)
@click.option("--recording-size", type=int, default=512 * 1024, show_default=True)
@click.pass_context
def demo_command(ctx: click.Context, directory: Path, sessions: int, recording_size: int) -> None:
    """Archive a simulated appliance into ./btic-demo, start to finish."""
    from btic import demo

    appliance, config_path = demo.prepare(
        directory, sessions=sessions, recording_size=recording_size
    )
    click.echo(f"started a simulated RS appliance at {appliance.url}")
    click.echo(f"wrote {config_path} (client secret in {directory / 'sim-client-secret'})")
    failed = False
    try:
        for schedule in ("every-15-minutes", "nightly"):
            click.echo(f"\n$ btic sync --config {config_path} --schedule {schedule}")
            try:
                ctx.invoke(sync_command, config_path=config_path, schedules=(schedule,))
            except SystemExit as exc:
                failed = failed or bool(exc.code)
    finally:
        appliance.stop()
    click.echo("")
    for line in demo.describe(directory):
        click.echo(line)
    click.echo(f"state:   {directory / 'btic-state.db'} (the ledger of every delivery)")
    click.echo("\nlook around:")
    click.echo(f"  ls -R {directory / 'archive'}")
    click.echo(f"  btic check --offline --config {config_path}")
    click.echo(
        f"  sqlite3 {directory / 'btic-state.db'} 'select data_type, status, count(*) from "
        "btic_deliveries "
        "group by 1, 2'"
    )
    click.echo(
        "the simulated appliance stopped with the demo; run `btic sim` to start one of your own."
    )
    if failed:
        raise SystemExit(EXIT_FAILED)


@main.command("sim")
@click.option("--product", type=click.Choice(["rs", "pa"]), default="rs", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="0 picks a free port.")
@click.option("--tls/--no-tls", default=True, show_default=True)
@click.option("--sessions", type=int, default=40, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--recording-size",
    type=int,
    default=256 * 1024,
    show_default=True,
    help="Bytes per session recording.",
)
@click.option("--backup-size", type=int, default=512 * 1024, show_default=True)
@click.option("--client-id", default=None, help="Generated when not given.")
@click.option("--client-secret", default=None, help="Generated when not given.")
@click.option(
    "--faults", default=None, help="e.g. 'latency=0.2,500:3,reset:1@recording,clock=-3600'."
)
@click.option(
    "--language", default="en", show_default=True, help="Language of 'no matching data' answers."
)
@click.option(
    "--deny", "denied", multiple=True, help="A permission the API account lacks (perm_backup...)."
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the CA certificate is written (a temporary directory by default).",
)
@click.option(
    "--site-name", default="sim", show_default=True, help="Name used in the printed [sites.NAME]."
)
def sim_command(
    product: str,
    host: str,
    port: int,
    tls: bool,
    sessions: int,
    seed: int,
    recording_size: int,
    backup_size: int,
    client_id: str | None,
    client_secret: str | None,
    faults: str | None,
    language: str,
    denied: tuple[str, ...],
    state_dir: Path | None,
    site_name: str,
) -> None:
    """Serve a simulated RS or PA appliance until interrupted."""
    import signal
    import threading

    from btic.sim import FaultPlan, SimulatedAppliance

    try:
        plan = FaultPlan.parse(faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    appliance = SimulatedAppliance(
        product,
        host=host,
        port=port,
        tls=tls,
        sessions=sessions,
        seed=seed,
        recording_size=recording_size,
        backup_size=backup_size,
        client_id=client_id,
        client_secret=client_secret,
        faults=plan,
        language=language,
        permissions=dict.fromkeys(denied, "0"),
        state_dir=state_dir,
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
    click.echo(
        f"next: edit it, set BTIC_SUPPORT_SECRET, then run: btic check --offline --config {path}"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
