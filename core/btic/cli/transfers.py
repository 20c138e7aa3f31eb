"""Commands that move data: ``transfer`` and ``import-xml``, and what ``sync`` shares
with them (running transfers as one recorded run, printing how it went)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from btic.appliance.model import Product
from btic.appliance.reports import DateWindow, RelativeWindow
from btic.cli.base import Runtime, config_option, echo_json, promise_json
from btic.cli.options import output_options, verbosity_of
from btic.config import Config, parse_duration
from btic.transfer import Reporter, SilentReporter, Summary, TransferRequest
from btic.types import DataType

#: Problems printed in full; the rest are counted (the log has them all).
SHOWN_PROBLEMS = 20
#: Items a dry run lists per destination and data type.
SHOWN_PLANNED = 50


destinations_option = click.option(
    "--dest", "destinations", multiple=True, required=True, help="A destination (repeatable)."
)
force_option = click.option(
    "--force", is_flag=True, help="Deliver again what the ledger says was delivered."
)


def _data_types(values: tuple[str, ...]) -> tuple[DataType, ...]:
    chosen: list[DataType] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                chosen.append(DataType(part))
    return tuple(dict.fromkeys(chosen))


def parse_moment(value: str, option: str) -> datetime | timedelta:
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


#: How far in the future (by this machine's clock) --since may lie: clocks differ.
FUTURE_TOLERANCE = timedelta(minutes=5)


def _relative_window(since: str, until: str | None) -> RelativeWindow:
    """--since/--until, checked before anything is asked of the appliance."""
    start = parse_moment(since, "--since")
    end = None if until is None else parse_moment(until, "--until")
    # A rough now: the appliance's clock decides the window, this one catches mistakes.
    local_now = datetime.now(timezone.utc)

    def moment(value: datetime | timedelta) -> datetime:
        return local_now - value if isinstance(value, timedelta) else value

    if moment(start) > local_now + FUTURE_TOLERANCE:
        raise click.BadParameter(
            "is in the future; nothing has ended there yet", param_hint="--since"
        )
    if end is not None and moment(end) < moment(start):
        raise click.BadParameter(
            f"{until} is before --since {since}; a window ends after it starts",
            param_hint="--until",
        )
    return RelativeWindow(start, end)


class Output:
    """Progress while a run goes, its summary and problems after.

    A run on a terminal shows bars and the summary. A scheduled run elsewhere
    (``sync`` from cron or a service) prints nothing when all went well, so cron
    mails only failures; a command a person gave (``transfer``, ``import-xml``)
    always answers. ``-v`` (or ``[logging] level`` set explicitly to info or
    debug) adds one log line per item and the summary; ``-q`` keeps only errors
    and the summary; ``--json`` prints the summary as one JSON object on stdout.
    """

    def __init__(
        self,
        config: Config,
        verbosity: int = 0,
        as_json: bool = False,
        *,
        quiet_when_ok: bool = False,
    ):
        from rich.console import Console

        from btic import logs
        from btic.progress import BarReporter

        self.interactive = sys.stderr.isatty()
        self.quiet_when_ok = quiet_when_ok
        self.verbosity = verbosity
        self.as_json = as_json
        self.log = logs.for_config(config)
        explicit = "level" in config.logging.model_fields_set
        self.per_item = verbosity > 0 or (
            verbosity == 0
            and not self.interactive
            and explicit
            and config.logging.level in ("debug", "info")
        )
        self.bars: AbstractContextManager[object] = nullcontext()
        # Each item's log line is the run's (see CommandRun); this is what else shows it.
        self.reporter: Reporter = SilentReporter()
        if self.interactive and verbosity >= 0 and not as_json:
            bars = BarReporter(Console(stderr=True))
            self.reporter, self.bars = bars, bars

    def summary(self, summary: Summary, dry_run: bool = False, loud: bool = False) -> str:
        """Print the summary as the verbosity asks; return its text for the runs table.

        :param loud: print it whatever the verbosity (an interrupted run).
        """
        from btic.progress import print_summary, summary_text

        text = summary_text(summary)
        shown = (
            loud
            or summary.failed
            or not self.quiet_when_ok
            or self.interactive
            or self.verbosity != 0
            or self.per_item
        )
        if self.as_json:
            echo_json(summary.as_json())
        elif dry_run:
            for (destination, data_type), items in sorted(summary.planned.items()):
                click.echo(f"would transfer {len(items)} {data_type} to {destination}")
                for item in items[:SHOWN_PLANNED]:
                    click.echo(f"  {item}")
                if len(items) > SHOWN_PLANNED:
                    click.echo(f"  ... and {len(items) - SHOWN_PLANNED} more")
        elif shown and self.interactive:
            from rich.console import Console

            print_summary(Console(), summary)
        elif shown and text:
            click.echo(text)
        if shown or dry_run:
            for message in dict.fromkeys(summary.notes):
                click.echo(f"note: {message}", err=True)
        for message in summary.given_up:
            click.echo(f"given up: {message}", err=True)
        problems = list(dict.fromkeys(summary.problems))
        for message in problems[:SHOWN_PROBLEMS]:
            click.echo(f"error: {message}", err=True)
        if len(problems) > SHOWN_PROBLEMS:
            click.echo(
                f"error: ... and {len(problems) - SHOWN_PROBLEMS} more problems (see the log)",
                err=True,
            )
        return text


@contextmanager
def stopping_on_signals(
    stop: threading.Event | Callable[[], None], *, reload: Callable[[], None] | None = None
) -> Iterator[list[signal.Signals]]:
    """SIGINT and SIGTERM set ``stop`` (or call it: the run ends after the items in
    hand) instead of killing btic mid-write; a second SIGINT interrupts at once,
    as usual. SIGHUP calls ``reload``, when given (and the platform has it)."""
    received: list[signal.Signals] = []
    request_stop = stop.set if isinstance(stop, threading.Event) else stop

    def handle(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum))
        request_stop()
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def handle_reload(_signum: int, _frame: object) -> None:
        if reload is not None:
            reload()

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    handlers: dict[signal.Signals, Callable[[int, object], None]] = {
        signal.SIGINT: handle,
        signal.SIGTERM: handle,
    }
    if reload is not None and hasattr(signal, "SIGHUP"):
        handlers[signal.SIGHUP] = handle_reload
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_requests(
    runtime: Runtime,
    config: Config,
    kind: str,
    requests: list[TransferRequest],
    *,
    schedule: str | None = None,
    dry_run: bool = False,
    verbosity: int = 0,
    as_json: bool = False,
    notes: Sequence[str] = (),
) -> None:
    """Run transfers as one recorded run, print how it went.

    :param notes: lines for the summary's notes (which schedules ran, which wait).

    :raises WorkFailed: when anything failed (already printed).
    """
    from btic.runs import CommandRun

    output = Output(config, verbosity, as_json, quiet_when_ok=kind == "sync")
    run = CommandRun(
        config,
        runtime.plugins,
        kind,
        reporter=output.reporter,
        log=output.log,
        schedule=schedule,
        items_on_console=output.per_item,
    )
    with run, output.bars, stopping_on_signals(run.engine.stop) as received:
        total = run.transfer(requests)
        run.note_given_up(total, [request.site for request in requests])
    for line in notes:
        total.note(line)
    if received:
        total.note(
            f"interrupted by {received[0].name} after the items in hand; the next run "
            "transfers the rest"
        )
    text = output.summary(total, dry_run=dry_run, loud=bool(received))
    run.finish(total, text, interrupted_by=received)


@click.command("transfer")
@config_option
@click.option("--site", required=True, help="The site to transfer from.")
@destinations_option
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
    help="As in the vendor's API tester, but by end date (sent as end_date: only completed "
    "sessions are archived): sessions that ended on or after this day (UTC) ...",
)
@click.option(
    "--duration",
    type=click.IntRange(min=0),
    default=None,
    help="... within this many days (0: to now).",
)
@click.option(
    "--lsid", "lsids", multiple=True, help="A session id (repeatable) instead of a window."
)
@force_option
@click.option("--dry-run", is_flag=True, help="List what would be transferred; move nothing.")
@output_options
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
    quiet: bool,
    verbose: int,
    as_json: bool,
) -> None:
    """Transfer a window or given sessions now (the vendor's API Tester).

    Watermarks do not move: scheduled transfers are unaffected.
    """
    promise_json(as_json)
    config = runtime.load_config(config_path)
    try:
        data_types = _data_types(types)
    except ValueError as exc:
        raise click.BadParameter(
            f"{exc}; allowed: {', '.join(dt.value for dt in DataType)}", param_hint="--type"
        ) from None
    config.require(sites=[site], destinations=destinations)
    selections = sum(
        1 for chosen in (since is not None, start_date is not None, bool(lsids)) if chosen
    )
    only_backups = set(data_types) == {DataType.BACKUP}
    if selections > 1 or (selections == 0 and not only_backups):
        raise click.UsageError(
            "give exactly one of --since [--until], --start-date [--duration], or --lsid "
            "(a backup needs none)"
        )
    if until is not None and since is None:
        raise click.UsageError("--until goes with --since")
    if duration is not None and start_date is None:
        raise click.UsageError("--duration goes with --start-date")
    window: RelativeWindow | DateWindow | None = None
    if since is not None:
        window = _relative_window(since, until)
    elif start_date is not None:
        window = DateWindow("end", start_date.date(), duration or 0)
    config.check_capabilities(runtime.plugins, destinations, data_types)
    request = TransferRequest(
        site=site,
        destinations=destinations,
        data_types=data_types,
        window=window,
        lsids=lsids,
        force=force,
        dry_run=dry_run,
    )
    run_requests(
        runtime,
        config,
        "transfer",
        [request],
        dry_run=dry_run,
        verbosity=verbosity_of(quiet, verbose),
        as_json=as_json,
    )


@click.command("import-xml")
@config_option
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@destinations_option
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
    "--product",
    type=click.Choice(["rs", "pa"]),
    default=None,
    help="What the files are; by default what their elements show, else the site's, else rs.",
)
@force_option
@output_options
@click.pass_obj
def import_xml_command(
    runtime: Runtime,
    config_path: Path | None,
    files: tuple[Path, ...],
    destinations: tuple[str, ...],
    types: tuple[str, ...],
    site: str | None,
    host: str | None,
    product: Product | None,
    force: bool,
    quiet: bool,
    verbose: int,
    as_json: bool,
) -> None:
    """Deliver previously downloaded session report files (the vendor's "XML Files" tab)."""
    from btic.runs import CommandRun
    from btic.transfer import import_reports

    promise_json(as_json)
    config = runtime.load_config(config_path)
    try:
        data_types = _data_types(types)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--type") from None
    config.require(sites=[site] if site is not None else [], destinations=destinations)
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
    config.check_capabilities(runtime.plugins, destinations, data_types)
    output = Output(config, verbosity_of(quiet, verbose), as_json)
    run = CommandRun(
        config,
        runtime.plugins,
        "import",
        reporter=output.reporter,
        log=output.log,
        items_on_console=output.per_item,
    )
    with run, output.bars:
        run.engine.configure(destinations)
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
        run.conclude(destinations, summary)
        if site is not None:
            run.note_given_up(summary, [site])
    run.finish(summary, output.summary(summary))
