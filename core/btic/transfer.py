"""The transfer engine: list -> diff -> fetch -> deliver -> ledger -> watermark.

For each (site, data type) of a transfer:

1. Window: from the watermark minus the overlap to the appliance's now minus
   the settle delay (first run: ``first_run_since``). The appliance's clock,
   from ``get_api_info``, is the only clock used.
2. List the closed sessions of the window (``...Listing`` by ``end_time``).
3. Drop what the ledger has settled for each destination.
4. Fetch the full reports of the rest in ``lsids`` batches, parsed as a stream.
5. Hand each session to each destination that lacks it; record at once.
6. Recordings of those sessions: download once to a spool file, hand the same
   file to each destination, record at once.
7. Advance each destination's watermark only over what it has settled.

A killed process loses nothing: what it delivered is in the ledger, what it
did not is listed again (the watermark did not move past it), and delivering
an item twice leaves one copy (destinations are idempotent).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import structlog

import btic
from btic.appliance.client import ApplianceClient, Download
from btic.appliance.model import ReportKind, Session
from btic.appliance.reports import (
    DateWindow,
    ListingEntry,
    RelativeWindow,
    Window,
    session_report_kind,
)
from btic.config import Config, parse_duration
from btic.errors import ApplianceError, DestinationError, RecordingExpired
from btic.plugins import PluginManager
from btic.processes import process_alive
from btic.state import DELIVERED, EXPIRED, FAILED, MAX_ATTEMPTS, SKIPPED, StateStore
from btic.types import (
    HOOK_FOR_DATA_TYPE,
    PRODUCT_DATA_TYPES,
    AppContext,
    Backup,
    DataType,
    Recording,
    SiteInfo,
    TransferContext,
)

LSIDS_PER_REQUEST = 50
SESSION_TYPES = (DataType.SESSION, DataType.PRESENTATION)
RECORDING_KIND = {
    DataType.RECORDING: "session",
    DataType.PRESENTATION_RECORDING: "presentation",
    DataType.COMMAND_SHELL_RECORDING: "command_shell",
    DataType.SHOW_MY_SCREEN_RECORDING: "show_my_screen",
}


# -- what a run reports ------------------------------------------------------------


@dataclass
class Tally:
    delivered: int = 0
    skipped: int = 0
    failed: int = 0
    expired: int = 0
    bytes: int = 0


@dataclass
class Summary:
    """Counts per (destination, data type), and the problems met."""

    tallies: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    problems: list[str] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    planned: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, destination: str, data_type: str, status: str, size: int | None = None) -> None:
        with self._lock:
            tally = self.tallies[(destination, data_type)]
            setattr(tally, status, getattr(tally, status) + 1)
            if status == DELIVERED and size:
                tally.bytes += size

    def problem(self, message: str) -> None:
        with self._lock:
            self.problems.append(message)

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(t.failed for t in self.tallies.values())

    def merge(self, other: Summary) -> None:
        for key, tally in other.tallies.items():
            mine = self.tallies[key]
            for name in ("delivered", "skipped", "failed", "expired", "bytes"):
                setattr(mine, name, getattr(mine, name) + getattr(tally, name))
        self.problems.extend(other.problems)
        self.given_up.extend(other.given_up)
        self.notes.extend(other.notes)
        for key, items in other.planned.items():
            self.planned[key].extend(items)


class Reporter(Protocol):
    """Where progress goes: bars on a terminal, log lines otherwise."""

    def delivered(
        self, destination: str, data_type: str, key: str, status: str, detail: str, size: int | None
    ) -> None: ...

    def note(self, message: str) -> None: ...


class SilentReporter:
    def delivered(
        self, destination: str, data_type: str, key: str, status: str, detail: str, size: int | None
    ) -> None:
        pass

    def note(self, message: str) -> None:
        pass


# -- the request ----------------------------------------------------------------------


@dataclass(frozen=True)
class TransferRequest:
    """One transfer: a site, destinations, data types, and what to select.

    With ``incremental`` the window comes from the watermarks and moves them
    (``btic sync``); otherwise ``window`` or ``lsids`` select the sessions and
    no watermark moves (``btic transfer``).
    """

    site: str
    destinations: tuple[str, ...]
    data_types: tuple[DataType, ...]
    incremental: bool = False
    window: Window | DateWindow | RelativeWindow | None = None
    lsids: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False


class Engine:
    """Runs transfers for one configuration and state database.

    :param concurrency: recordings downloaded (and delivered) at once; None
        takes each site's ``download_concurrency``.
    """

    def __init__(
        self,
        config: Config,
        plugins: PluginManager,
        state: StateStore,
        *,
        run_id: str,
        reporter: Reporter | None = None,
        concurrency: int | None = None,
        log: Any = None,
        client_factory: Callable[[str], ApplianceClient] | None = None,
    ):
        self.config = config
        self.plugins = plugins
        self.state = state
        self.run_id = run_id
        self.reporter = reporter or SilentReporter()
        self.concurrency = concurrency
        # Plugins may always log through ctx.log / app.log.
        self.log = log if log is not None else structlog.get_logger("btic")
        self.spool_root = _run_spool()
        self._client_factory = client_factory or (
            lambda name: ApplianceClient.for_site(name, config, spool_dir=self.spool_root)
        )
        self._configured: set[str] = set()

    def close(self) -> None:
        """Remove this run's spool directory."""
        shutil.rmtree(self.spool_root, ignore_errors=True)

    # -- destinations --------------------------------------------------------------

    def configure(self, names: Iterable[str]) -> None:
        """Make and configure each destination once per engine."""
        app = AppContext(config_dir=self.config.base_dir, version=btic.__version__, log=self.log)
        for name in names:
            if name not in self._configured:
                destination = self.config.destinations[name]
                self.plugins.add_destination(name, destination.plugin, destination.options, app)
                self._configured.add(name)

    def check_destination(self, name: str) -> str | None:
        self.configure([name])
        if "on_check" not in self.plugins.destination_plugin(name).hooks:
            return None
        return self.plugins.call(name, "on_check", destination=name)

    # -- a transfer ------------------------------------------------------------------

    def run(self, request: TransferRequest) -> Summary:
        summary = Summary()
        self.configure(request.destinations)
        with self._client_factory(request.site) as client:
            try:
                appliance_now = client.appliance_now()
                product = client.product
            except ApplianceError as exc:
                summary.problem(str(exc))
                return summary
            site = SiteInfo(request.site, self.config.sites[request.site].host, product)
            unsupported = [dt for dt in request.data_types if dt not in PRODUCT_DATA_TYPES[product]]
            for data_type in unsupported:
                summary.problem(
                    f"site {request.site}: a {product.upper()} appliance has no {data_type.value}; "
                    "remove it from the transfer"
                )
            wanted = [dt for dt in request.data_types if dt not in unsupported]
            by_report: dict[ReportKind, list[DataType]] = defaultdict(list)
            for data_type in wanted:
                if data_type != DataType.BACKUP:
                    by_report[session_report_kind(product, data_type)].append(data_type)
            for report, data_types in by_report.items():
                run = _SessionRun(
                    self, client, site, request, report, tuple(data_types), appliance_now, summary
                )
                try:
                    run.execute()
                except ApplianceError as exc:
                    summary.problem(str(exc))
            if DataType.BACKUP in wanted:
                self._backup(client, site, request, summary)
        return summary

    # -- delivery, shared by sessions, recordings and backups -------------------------

    def deliver(
        self,
        *,
        destination: str,
        data_type: DataType,
        key: str,
        site: SiteInfo,
        hook_args: dict[str, Any],
        force: bool,
        summary: Summary,
        item_time: datetime | None = None,
    ) -> str:
        """Call one destination's hook for one item and record the outcome at once."""
        ctx = TransferContext(
            site=site,
            destination=destination,
            data_type=data_type,
            run_id=self.run_id,
            force=force,
            log=self.log,
        )
        hook = HOOK_FOR_DATA_TYPE[data_type]
        give_up = False
        try:
            result = self.plugins.call(destination, hook, ctx=ctx, **hook_args)
        except DestinationError as exc:
            status, error, give_up = FAILED, str(exc), exc.permanent
            result = None
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop the others
            status, error = FAILED, f"{type(exc).__name__}: {exc}"
            result = None
            self.log.error(
                "plugin raised",
                destination=destination,
                data_type=data_type.value,
                key=key,
                traceback=traceback.format_exc(),
            )
        else:
            status, error = (DELIVERED if result is not None else SKIPPED), None
        attempts = self.state.record(
            site=site.name,
            destination=destination,
            data_type=data_type.value,
            item_key=key,
            status=status,
            run_id=self.run_id,
            location=getattr(result, "location", None),
            size=getattr(result, "size", None),
            sha256=getattr(result, "sha256", None),
            error=error,
            item_time=item_time,
            give_up=give_up,
        )
        summary.count(destination, data_type.value, status, getattr(result, "size", None))
        detail = getattr(result, "location", None) or error or ""
        self.reporter.delivered(
            destination, data_type.value, key, status, detail, getattr(result, "size", None)
        )
        if status == FAILED:
            message = f"{destination}: {data_type.value} {key}: {error}"
            summary.problem(message)
            if attempts >= MAX_ATTEMPTS:
                summary.given_up.append(
                    f"{message} (failed {attempts} times; given up until btic transfer --force)"
                )
        return status

    def mark(
        self,
        *,
        destination: str,
        data_type: DataType,
        key: str,
        site: SiteInfo,
        status: str,
        detail: str,
        summary: Summary,
        count: bool = True,
    ) -> None:
        """Record an outcome that needed no hook call (no recording, expired)."""
        self.state.record(
            site=site.name,
            destination=destination,
            data_type=data_type.value,
            item_key=key,
            status=status,
            run_id=self.run_id,
            location=None,
            error=detail if status != SKIPPED else None,
        )
        if count:
            summary.count(destination, data_type.value, status)
            self.reporter.delivered(destination, data_type.value, key, status, detail, None)

    def spool(self) -> Path:
        """A directory for one download, inside this run's spool."""
        return Path(tempfile.mkdtemp(prefix="item-", dir=self.spool_root))

    # -- backups -------------------------------------------------------------------------

    def _backup(
        self, client: ApplianceClient, site: SiteInfo, request: TransferRequest, summary: Summary
    ) -> None:
        if request.dry_run:
            for destination in request.destinations:
                summary.planned[(destination, DataType.BACKUP.value)].append("a new backup")
            return
        spool = self.spool()
        try:
            try:
                download = client.download_backup(spool)
            except ApplianceError as exc:
                summary.problem(str(exc))
                return
            moment = client.appliance_now()
            backup = Backup(
                site=site,
                time=moment,
                extension=download.extension,
                size=download.size,
                sha256=download.sha256,
                path=download.path,
            )
            key = moment.strftime("%Y%m%dT%H%M%SZ")
            for destination in request.destinations:
                self.deliver(
                    destination=destination,
                    data_type=DataType.BACKUP,
                    key=key,
                    site=site,
                    hook_args={"backup": backup},
                    force=request.force,
                    summary=summary,
                    item_time=moment,
                )
        finally:
            shutil.rmtree(spool, ignore_errors=True)


class _SessionRun:
    """One (site, report kind) pass of a transfer: sessions and their recordings."""

    def __init__(
        self,
        engine: Engine,
        client: ApplianceClient,
        site: SiteInfo,
        request: TransferRequest,
        report: ReportKind,
        data_types: tuple[DataType, ...],
        appliance_now: datetime,
        summary: Summary,
    ):
        self.engine = engine
        self.client = client
        self.site = site
        self.request = request
        self.report = report
        self.data_types = data_types
        self.appliance_now = appliance_now
        self.summary = summary
        self.state = engine.state
        #: (data type, destination) -> lsids still to settle
        self.pending: dict[tuple[DataType, str], set[str]] = {}
        #: lsid -> end time, for the sessions fetched
        self.end_times: dict[str, datetime] = {}
        self.clock_went_back = False
        self.settings = engine.config.sites[site.name]

    # -- the steps ---------------------------------------------------------------------

    def execute(self) -> None:
        until = self.appliance_now - self.settings.settle_delay
        entries = self._select(until)
        listed = [e.lsid for e in entries]
        for data_type in self.data_types:
            for destination in self.request.destinations:
                settled = (
                    set()
                    if self.request.force
                    else self.state.settled(self.site.name, destination, data_type.value, listed)
                )
                self.pending[(data_type, destination)] = {
                    lsid for lsid in listed if lsid not in settled
                }
        if self.request.dry_run:
            for (data_type, destination), lsids in self.pending.items():
                self.summary.planned[(destination, data_type.value)].extend(sorted(lsids))
            return
        self._mark_sessions_without_recording(entries)
        needed = [lsid for lsid in listed if any(lsid in p for p in self.pending.values())]
        fetched_ok = self._fetch_and_deliver(needed)
        if self.request.incremental:
            self._advance_watermarks(until, fetched_ok)

    def _select(self, until: datetime) -> list[ListingEntry]:
        if self.request.lsids:
            return [ListingEntry(lsid, None, True, None) for lsid in self.request.lsids]
        if self.request.incremental:
            window = Window("end", self._since(), until)
        else:
            window = self.request.window
            if window is None:
                raise ValueError("a manual transfer needs a window or lsids")
            if isinstance(window, RelativeWindow):
                window = window.resolve(self.appliance_now)
        return self.client.list_sessions(self.report, window)

    def _since(self) -> datetime:
        marks = [
            self.state.watermark_entry(self.site.name, dt.value, d)
            for dt in self.data_types
            for d in self.request.destinations
        ]
        if marks and all(m is not None for m in marks):
            since = min(m[0] for m in marks) - self.settings.overlap  # type: ignore[index]
            if max(m[0] for m in marks) > self.appliance_now:  # type: ignore[index]
                # The appliance's clock was set back since the last run: sessions that ended
                # since then carry times before the watermark. Reach back as far as real
                # time has passed since (this machine's clock, used only as a stopwatch).
                self.clock_went_back = True
                elapsed = datetime.now(timezone.utc) - min(m[1] for m in marks)  # type: ignore[index]
                since = min(
                    since, self.appliance_now - max(elapsed, timedelta(0)) - self.settings.overlap
                )
            return since
        if self.settings.first_run_since == "all":
            return datetime(1970, 1, 2, tzinfo=timezone.utc)
        return self.appliance_now - parse_duration(self.settings.first_run_since)

    def _mark_sessions_without_recording(self, entries: list[ListingEntry]) -> None:
        """The listing says which sessions have no screen recording: nothing to fetch for those."""
        for data_type in (DataType.RECORDING, DataType.PRESENTATION_RECORDING):
            if data_type not in self.data_types:
                continue
            for entry in entries:
                if entry.has_recording:
                    continue
                for destination in self.request.destinations:
                    pending = self.pending[(data_type, destination)]
                    if entry.lsid in pending:
                        self.engine.mark(
                            destination=destination,
                            data_type=data_type,
                            key=entry.lsid,
                            site=self.site,
                            status=SKIPPED,
                            detail="no recording",
                            summary=self.summary,
                            count=False,
                        )
                        pending.discard(entry.lsid)

    def _fetch_and_deliver(self, lsids: list[str]) -> bool:
        """Fetch reports in batches and deliver; False if a batch could not be fetched."""
        all_fetched = True
        recording_types = [dt for dt in self.data_types if dt in RECORDING_KIND]
        workers = self.engine.concurrency or self.settings.download_concurrency
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="btic-download") as pool:
            # Bounded hand-off: memory stays flat however many sessions a report holds.
            slots = threading.BoundedSemaphore(workers * 2)
            futures: list[Future[None]] = []
            for start in range(0, len(lsids), LSIDS_PER_REQUEST):
                batch = lsids[start : start + LSIDS_PER_REQUEST]
                try:
                    for session, xml in self.client.iter_sessions(self.report, lsids=batch):
                        if session.end_time is None:
                            self._in_progress(session)
                            continue
                        self.end_times[session.lsid] = session.end_time
                        self._deliver_session(session, xml)
                        if recording_types:
                            slots.acquire()
                            future = pool.submit(self._recordings_of, session, recording_types)
                            future.add_done_callback(lambda _f: slots.release())
                            futures.append(future)
                        futures = [f for f in futures if not f.done() or f.exception() is not None]
                except ApplianceError as exc:
                    self.summary.problem(str(exc))
                    all_fetched = False
            for future in futures:
                exception = future.exception()
                if exception is not None:
                    self.summary.problem(
                        f"site {self.site.name}: {type(exception).__name__}: {exception}"
                    )
        return all_fetched

    def _in_progress(self, session: Session) -> None:
        # Its report is not final and its recordings do not exist yet: delivering it
        # now would settle it in the ledger with an incomplete report.
        self.summary.notes.append(
            f"session {session.lsid} is still in progress; it is transferred once it "
            "has ended (a sync picks it up then)"
        )

    def _deliver_session(self, session: Session, xml: bytes) -> None:
        for data_type in self.data_types:
            if data_type not in SESSION_TYPES:
                continue
            for destination in self.request.destinations:
                if session.lsid in self.pending[(data_type, destination)]:
                    status = self.engine.deliver(
                        destination=destination,
                        data_type=data_type,
                        key=session.lsid,
                        site=self.site,
                        hook_args={"session": session, "xml": xml},
                        force=self.request.force,
                        summary=self.summary,
                        item_time=session.end_time,
                    )
                    if status != FAILED:
                        self.pending[(data_type, destination)].discard(session.lsid)

    # -- recordings ------------------------------------------------------------------------

    def _recordings_of(self, session: Session, recording_types: list[DataType]) -> None:
        for data_type in recording_types:
            destinations = [
                d for d in self.request.destinations if session.lsid in self.pending[(data_type, d)]
            ]
            if not destinations:
                continue
            links = _recording_links(session, data_type)
            if not links:
                for destination in destinations:
                    self.engine.mark(
                        destination=destination,
                        data_type=data_type,
                        key=session.lsid,
                        site=self.site,
                        status=SKIPPED,
                        detail="no recording",
                        summary=self.summary,
                        count=False,
                    )
                    self.pending[(data_type, destination)].discard(session.lsid)
                continue
            outcomes: dict[str, list[str]] = {d: [] for d in destinations}
            for report_instance, api_instance in links:
                key = _recording_key(session.lsid, data_type, report_instance)
                need = (
                    destinations
                    if self.request.force
                    else [
                        d
                        for d in destinations
                        if not self.state.settled(self.site.name, d, data_type.value, [key])
                    ]
                )
                for destination in destinations:
                    if destination not in need:
                        outcomes[destination].append(DELIVERED)
                if need:
                    for destination, status in self._one_recording(
                        session, data_type, key, report_instance, api_instance, need
                    ).items():
                        outcomes[destination].append(status)
            if data_type in (DataType.COMMAND_SHELL_RECORDING, DataType.SHOW_MY_SCREEN_RECORDING):
                # Several per session: a marker under the lsid says the session is done.
                for destination, statuses in outcomes.items():
                    if all(s != FAILED for s in statuses):
                        self.state.record(
                            site=self.site.name,
                            destination=destination,
                            data_type=data_type.value,
                            item_key=session.lsid,
                            status=DELIVERED,
                            run_id=self.engine.run_id,
                            location=f"{len(statuses)} recording(s)",
                            item_time=session.end_time,
                        )
            for destination, statuses in outcomes.items():
                if all(s != FAILED for s in statuses):
                    self.pending[(data_type, destination)].discard(session.lsid)

    def _one_recording(
        self,
        session: Session,
        data_type: DataType,
        key: str,
        report_instance: int | None,
        api_instance: int | None,
        destinations: list[str],
    ) -> dict[str, str]:
        kind = RECORDING_KIND[data_type]
        spool = self.engine.spool()
        try:
            try:
                download: Download = self.client.download_recording(
                    kind, session.lsid, api_instance, spool
                )
            except RecordingExpired as exc:
                for destination in destinations:
                    self.engine.mark(
                        destination=destination,
                        data_type=data_type,
                        key=key,
                        site=self.site,
                        status=EXPIRED,
                        detail=str(exc),
                        summary=self.summary,
                    )
                return dict.fromkeys(destinations, EXPIRED)
            except ApplianceError as exc:
                statuses = {}
                for destination in destinations:
                    self.engine.mark(
                        destination=destination,
                        data_type=data_type,
                        key=key,
                        site=self.site,
                        status=FAILED,
                        detail=str(exc),
                        summary=self.summary,
                    )
                    statuses[destination] = FAILED
                self.summary.problem(str(exc))
                return statuses
            recording = Recording(
                site=self.site,
                lsid=session.lsid,
                kind=kind,
                instance=report_instance,  # type: ignore[arg-type]
                extension=download.extension,
                size=download.size,
                sha256=download.sha256,
                path=download.path,
                session=session,
            )
            return {
                destination: self.engine.deliver(
                    destination=destination,
                    data_type=data_type,
                    key=key,
                    site=self.site,
                    hook_args={"recording": recording},
                    force=self.request.force,
                    summary=self.summary,
                    item_time=session.end_time,
                )
                for destination in destinations
            }
        finally:
            shutil.rmtree(spool, ignore_errors=True)

    # -- watermarks ------------------------------------------------------------------------

    def _advance_watermarks(self, until: datetime, fetched_ok: bool) -> None:
        for (data_type, destination), left in self.pending.items():
            if not left:
                position = until
            elif fetched_ok and all(lsid in self.end_times for lsid in left):
                # Stop just before the earliest session still owed to this destination.
                position = min(self.end_times[lsid] for lsid in left) - timedelta(seconds=1)
            else:
                continue
            self.state.advance_watermark(
                self.site.name,
                data_type.value,
                destination,
                position,
                allow_back=self.clock_went_back,
            )


SPOOL_PARENT = "btic-spool"


def _run_spool() -> Path:
    """This run's spool directory; spools of runs that died (SIGKILL) are removed first."""
    parent = Path(tempfile.gettempdir()) / SPOOL_PARENT
    parent.mkdir(mode=0o700, exist_ok=True)
    for entry in parent.iterdir():
        pid = entry.name.split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))


def _recording_links(session: Session, data_type: DataType) -> list[tuple[int | None, int | None]]:
    """(instance as the report numbers it, instance as the API wants it) of each recording."""
    if data_type in (DataType.RECORDING, DataType.PRESENTATION_RECORDING):
        return [(None, None)] if session.session_recording_download_url else []
    links = (
        session.command_shell_recordings
        if data_type == DataType.COMMAND_SHELL_RECORDING
        else session.show_my_screen_recordings
    )
    result = []
    for link in links:
        api_instance = link.instance
        if link.download_url:
            values = parse_qs(urlsplit(link.download_url).query).get("instance")
            if values and values[0].isdigit():
                # The RS guide: the report numbers command shells from 1, the API from 0.
                api_instance = int(values[0])
        result.append((link.instance, api_instance))
    return result


def _recording_key(lsid: str, data_type: DataType, report_instance: int | None) -> str:
    return lsid if report_instance is None else f"{lsid}#{report_instance}"


def import_reports(
    engine: Engine,
    files: Iterable[Path],
    *,
    site: str | None,
    host: str | None,
    product: str | None,
    destinations: tuple[str, ...],
    data_types: tuple[DataType, ...],
    force: bool = False,
) -> Summary:
    """Deliver the sessions of report files downloaded earlier (``btic import-xml``).

    Recordings of those sessions are fetched from ``site``. The ledger is kept
    as for any transfer, so a later sync does not deliver them again.
    """
    from btic.appliance.parse import iter_sessions

    summary = Summary()
    if site is None:
        # Reports from a configured appliance count against that site's ledger.
        site = next((name for name, s in engine.config.sites.items() if s.host == host), None)
    client = (
        engine._client_factory(site)
        if site is not None and any(dt in RECORDING_KIND for dt in data_types)
        else None
    )
    try:
        if product is None:
            product = (
                client.product
                if client is not None
                else (engine.config.sites[site].product if site is not None else "rs")
            )
            if product == "auto":
                product = "rs"
        host = engine.config.sites[site].host if site is not None else host
        site_info = SiteInfo(site or str(host), str(host), product)  # type: ignore[arg-type]
        engine.configure(destinations)
        request = TransferRequest(
            site=site_info.name, destinations=destinations, data_types=data_types, force=force
        )
        runs: dict[str, _SessionRun] = {}
        base_report: ReportKind = "access" if product == "pa" else "support"
        for path in files:
            try:
                for session, xml in iter_sessions(
                    path,
                    product=product,
                    report=base_report,  # type: ignore[arg-type]
                    host=site_info.host,
                ):
                    report: ReportKind = (
                        "presentation" if session.session_type == "presentation" else base_report
                    )
                    if report == "presentation":
                        session = session.model_copy(update={"report": "presentation"})
                    kinds = tuple(
                        dt for dt in data_types if session_report_kind(product, dt) == report
                    )  # type: ignore[arg-type]
                    if not kinds:
                        continue
                    if session.end_time is None:
                        summary.notes.append(
                            f"{path}: session {session.lsid} was still in progress when the "
                            "report was saved; not imported (a sync will transfer it)"
                        )
                        continue
                    run = runs.get(report)
                    if run is None:
                        run = _SessionRun(
                            engine,
                            client,
                            site_info,
                            request,
                            report,
                            kinds,  # type: ignore[arg-type]
                            datetime.now(timezone.utc),
                            summary,
                        )
                        runs[report] = run
                    for data_type in kinds:
                        for destination in destinations:
                            settled = force or session.lsid in engine.state.settled(
                                site_info.name, destination, data_type.value, [session.lsid]
                            )
                            lsids = run.pending.setdefault((data_type, destination), set())
                            if not settled:
                                lsids.add(session.lsid)
                    run._deliver_session(session, xml)
                    recording_types = [dt for dt in kinds if dt in RECORDING_KIND]
                    if recording_types and session.is_closed:
                        run._recordings_of(session, recording_types)
            except ApplianceError as exc:
                summary.problem(f"{path}: {exc}")
    finally:
        if client is not None:
            client.close()
    return summary
