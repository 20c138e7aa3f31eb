"""The engine: one transfer at a time, and the one path from an item to a plugin.

:meth:`Engine.run` splits a transfer by report (support, presentation,
access) into :class:`~btic.transfer.sessions.SessionRun` passes and takes the
backup itself. Every item, whatever its kind, reaches a destination through
:meth:`Engine.deliver`, which records the outcome in the ledger at once.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import structlog
from structlog.typing import FilteringBoundLogger

from btic import encryption
from btic.appliance.client import ApplianceClient
from btic.appliance.model import ReportKind, Session
from btic.appliance.reports import DateWindow, RelativeWindow, Window, session_report_kind
from btic.config import Config
from btic.encryption import EncryptionError
from btic.errors import ApplianceError, DestinationError
from btic.leases import Leases, lease_name
from btic.plugins import PluginManager
from btic.state import DELIVERED, FAILED, MAX_ATTEMPTS, SKIPPED, StateStore
from btic.transfer.spool import RunSpool, spool_parent
from btic.transfer.summary import Reporter, SilentReporter, Summary
from btic.types import (
    PRODUCT_DATA_TYPES,
    Backup,
    DataType,
    Delivery,
    Recording,
    SiteInfo,
    TransferContext,
)

#: Failures in a row, with one cause, after which a destination is left alone for the run.
DOWN_AFTER = 3


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
    #: ``txt``: command shells as their text output (PA's ``format=txt``)
    command_shell_format: str = "flv"


@dataclass(frozen=True)
class SessionDocument:
    """A session report as ``on_session_xml`` receives it: parsed, and as sent."""

    session: Session
    xml: bytes


#: What :meth:`Engine.deliver` hands to a destination.
Item = SessionDocument | Recording | Backup


def _encrypted(backup: Backup, passphrase: str) -> Backup:
    """The backup encrypted at rest (``backup_password``), beside it in the spool."""
    sealed = backup.path.with_name(f"{backup.path.name}.{encryption.EXTENSION}")
    size, sha256 = encryption.encrypt_file(backup.path, sealed, passphrase)
    backup.path.unlink()
    return replace(
        backup,
        extension=f"{backup.extension}.{encryption.EXTENSION}",
        size=size,
        sha256=sha256,
        path=sealed,
    )


def item_key(site: SiteInfo, data_type: DataType, item: Item) -> tuple[str, ...]:
    """The key a destination de-duplicates on (see :class:`btic.types.TransferContext`)."""
    if isinstance(item, Backup):
        return (site.host, data_type.value, item.time.strftime("%Y%m%dT%H%M%SZ"))
    if isinstance(item, Recording):
        instance = () if item.instance is None else (str(item.instance),)
        return (site.host, data_type.value, item.lsid, *instance)
    return (site.host, data_type.value, item.session.lsid)


class Engine:
    """Runs transfers for one configuration and state database.

    :param concurrency: recordings downloaded (and delivered) at once; None
        takes each site's ``download_concurrency``.
    :param client_factory: makes the appliance client of a site (tests
        inject one); by default :meth:`ApplianceClient.for_site`.
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
        log: FilteringBoundLogger | None = None,
        client_factory: Callable[[str], ApplianceClient] | None = None,
    ):
        self.config = config
        self.plugins = plugins
        self.state = state
        self.run_id = run_id
        self.reporter = reporter or SilentReporter()
        self.concurrency = concurrency
        # Plugins may always log through ctx.log / app.log.
        self.log: FilteringBoundLogger = log if log is not None else structlog.get_logger("btic")
        self._spool = RunSpool(spool_parent(config.state_url))
        self.spool_root = self._spool.path
        self._client_factory = client_factory or self._default_client
        self._clients: dict[str, ApplianceClient] = {}
        self._clients_lock = threading.Lock()
        self._configured: set[str] = set()
        self.leases = Leases(state, run_id)
        # destination -> (cause, failures in a row); destinations left alone this run
        self._streaks: dict[str, tuple[str, int]] = {}
        self._down: dict[str, str] = {}
        self._streak_lock = threading.Lock()
        #: set to stop after the items in hand (SIGINT, SIGTERM)
        self.stop = threading.Event()

    def _default_client(self, site: str) -> ApplianceClient:
        return ApplianceClient.for_site(site, self.config, spool_dir=self.spool_root)

    def client(self, site: str) -> ApplianceClient:
        """The run's client of ``site``, made on first use and closed by :meth:`close`.

        One per site, shared by every transfer and thread of the run, so a run
        asks the appliance for one token per site: an API account holds 30, and
        the 31st logs out the oldest holder (another integration, perhaps).
        """
        with self._clients_lock:
            client = self._clients.get(site)
            if client is None:
                client = self._clients[site] = self._client_factory(site)
            return client

    def close(self) -> None:
        """Give back the run's leases, close its appliance clients, remove its spool."""
        self.leases.close()
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        self._spool.close()

    def spool(self) -> Path:
        """A directory for one download, inside this run's spool."""
        return Path(tempfile.mkdtemp(prefix="item-", dir=self.spool_root))

    # -- destinations ----------------------------------------------------------------

    def configure(self, names: Iterable[str]) -> None:
        """Make and configure each destination once per engine."""
        for name in names:
            if name not in self._configured:
                self.config.configure_destination(self.plugins, name, self.log)
                self._configured.add(name)

    # -- a transfer --------------------------------------------------------------------

    def run(self, request: TransferRequest) -> Summary:
        """One transfer, under the leases of its (destination, data type) pairs:
        a pair another run holds is skipped, with a note saying so."""
        summary = Summary()
        self.configure(request.destinations)
        if request.dry_run:
            self._run(request, summary)
            return summary
        taken: list[str] = []
        held: dict[DataType, list[str]] = {dt: [] for dt in request.data_types}
        for data_type in request.data_types:
            for destination in request.destinations:
                name = lease_name(request.site, destination, data_type.value)
                holder = self.leases.acquire(name)
                if holder is None:
                    taken.append(name)
                    held[data_type].append(destination)
                else:
                    summary.note(
                        f"site {request.site}: {data_type.value} for {destination} is being "
                        f"transferred by another run ({holder}); skipped here"
                    )
        # Pairs held for the same destinations run as one transfer (one report fetch).
        groups: dict[tuple[str, ...], list[DataType]] = {}
        for data_type, holding in held.items():
            if holding:
                groups.setdefault(tuple(holding), []).append(data_type)
        try:
            for destinations, data_types in groups.items():
                if self.stop.is_set():
                    break
                part = replace(request, destinations=destinations, data_types=tuple(data_types))
                self._run(part, summary)
        finally:
            self.leases.release(taken)
        return summary

    def _run(self, request: TransferRequest, summary: Summary) -> None:
        from btic.transfer.sessions import SessionRun

        client = self.client(request.site)
        try:
            appliance_now = client.appliance_now()
            product = client.product
        except ApplianceError as exc:
            summary.problem(str(exc))
            return
        site = SiteInfo(request.site, self.config.sites[request.site].host, product)
        unsupported = [dt for dt in request.data_types if dt not in PRODUCT_DATA_TYPES[product]]
        for data_type in unsupported:
            summary.problem(
                f"site {request.site}: a {product.upper()} appliance has no {data_type.value}; "
                "remove it from the transfer"
            )
        wanted = [dt for dt in request.data_types if dt not in unsupported]
        if request.command_shell_format == "txt" and product != "pa":
            summary.note(
                f'site {request.site}: command_shell_format = "txt" is a Privileged Access '
                "feature; this RS appliance sends its command shells as recordings"
            )
        by_report: dict[ReportKind, list[DataType]] = defaultdict(list)
        for data_type in wanted:
            if data_type != DataType.BACKUP:
                by_report[session_report_kind(product, data_type)].append(data_type)
        for report, data_types in by_report.items():
            if self.stop.is_set():
                return
            run = SessionRun(
                self, client, site, request, report, tuple(data_types), appliance_now, summary
            )
            try:
                run.execute()
            except ApplianceError as exc:
                summary.problem(str(exc))
        if DataType.BACKUP in wanted and not self.stop.is_set():
            self._backup(client, site, request, summary)

    # -- delivery, shared by sessions, recordings and backups ---------------------------

    def deliver(
        self,
        *,
        destination: str,
        data_type: DataType,
        key: str,
        site: SiteInfo,
        item: Item,
        force: bool,
        summary: Summary,
        item_time: datetime | None = None,
    ) -> str:
        """Hand one item to one destination and record the outcome at once."""
        if destination in self._down:
            # Left alone for the rest of the run: the item stays pending, unrecorded.
            summary.count(destination, data_type.value, FAILED)
            return FAILED
        ctx = TransferContext(
            site=site,
            destination=destination,
            data_type=data_type,
            run_id=self.run_id,
            force=force,
            log=self.log,
            item_key=item_key(site, data_type, item),
        )
        give_up = False
        error: str | None = None
        result: Delivery | None = None
        try:
            result = self._hand_over(destination, item, ctx)
        except DestinationError as exc:
            status, error, give_up = FAILED, str(exc), exc.permanent
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop the others
            status, error = FAILED, f"{type(exc).__name__}: {exc}"
            self.log.error(
                "plugin raised",
                destination=destination,
                data_type=data_type.value,
                key=key,
                traceback=traceback.format_exc(),
            )
        else:
            status = DELIVERED if result is not None else SKIPPED
        # A plugin may return any object with these attributes; read them defensively.
        location = getattr(result, "location", None)
        size = getattr(result, "size", None)
        # A destination's failure is retried until it ends, however long (a full disk,
        # a database down): only the plugin can say an item itself is unacceptable.
        self.state.record(
            site=site.name,
            destination=destination,
            data_type=data_type.value,
            item_key=key,
            status=status,
            run_id=self.run_id,
            location=location,
            size=size,
            sha256=getattr(result, "sha256", None),
            error=error,
            item_time=item_time,
            give_up=give_up,
        )
        summary.count(destination, data_type.value, status, size)
        summary.removed(destination, data_type.value, len(getattr(result, "removed", ()) or ()))
        self.reporter.delivered(
            destination, data_type.value, key, status, location or error or "", size
        )
        self._note_streak(destination, status, error, summary)
        if status == FAILED:
            message = f"{destination}: {data_type.value} {key}: {error}"
            summary.problem(message)
            if give_up:
                summary.give_up(
                    f"{message} (the destination refuses this item; given up until "
                    "btic transfer --force)"
                )
        return status

    def locate(
        self, *, destination: str, data_type: DataType, site: SiteInfo, session: Session
    ) -> str | None:
        """Where ``destination`` would put a session report (a dry run); None when its
        plugin cannot say. Nothing is written or recorded."""
        ctx = TransferContext(
            site=site,
            destination=destination,
            data_type=data_type,
            run_id=self.run_id,
            log=self.log,
            item_key=(site.host, data_type.value, session.lsid),
        )
        try:
            return self.plugins.on_locate(destination, session=session, ctx=ctx)
        except DestinationError as exc:
            return f"(cannot tell: {exc})"
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop a dry run
            return f"(cannot tell: {type(exc).__name__}: {exc})"

    def _note_streak(
        self, destination: str, status: str, error: str | None, summary: Summary
    ) -> None:
        """Leave a destination alone for the rest of the run once it has failed the
        same way (the same cause: "No space left on device", "Permission denied")
        DOWN_AFTER times in a row: the rest of its items stay pending, unoffered."""
        with self._streak_lock:
            if status != FAILED or error is None:
                self._streaks.pop(destination, None)
                return
            cause = error.rsplit(": ", 1)[-1]
            previous, count = self._streaks.get(destination, ("", 0))
            count = count + 1 if cause == previous else 1
            self._streaks[destination] = (cause, count)
            if count < DOWN_AFTER or destination in self._down:
                return
            self._down[destination] = cause
        summary.problem(
            f"{destination}: failed {count} times in a row ({cause}); no more items are "
            "offered to it in this run, and they stay pending for the next"
        )

    def _hand_over(self, destination: str, item: Item, ctx: TransferContext) -> Delivery | None:
        if isinstance(item, Recording):
            return self.plugins.on_recording(destination, recording=item, ctx=ctx)
        if isinstance(item, Backup):
            return self.plugins.on_backup(destination, backup=item, ctx=ctx)
        return self.plugins.on_session_xml(destination, session=item.session, xml=item.xml, ctx=ctx)

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
        given_up_after_repeats: bool = False,
    ) -> None:
        """Record an outcome that needed no hook call (no recording, expired, or
        the appliance failed to give the item)."""
        attempts = self.state.record(
            site=site.name,
            destination=destination,
            data_type=data_type.value,
            item_key=key,
            status=status,
            run_id=self.run_id,
            location=None,
            error=detail if status != SKIPPED else None,
            give_up_after=MAX_ATTEMPTS if given_up_after_repeats else None,
        )
        if count:
            summary.count(destination, data_type.value, status)
            self.reporter.delivered(destination, data_type.value, key, status, detail, None)
        if given_up_after_repeats and status == FAILED and attempts >= MAX_ATTEMPTS:
            summary.give_up(
                f"{destination}: {data_type.value} {key}: {detail} (the appliance said so "
                f"{attempts} runs in a row; given up until btic transfer --force)"
            )

    def mark_session_done(
        self,
        *,
        destination: str,
        data_type: DataType,
        site: SiteInfo,
        session: Session,
        recordings: int,
    ) -> None:
        """Record that every numbered recording of a session reached ``destination``."""
        self.state.record(
            site=site.name,
            destination=destination,
            data_type=data_type.value,
            item_key=session.lsid,
            status=DELIVERED,
            run_id=self.run_id,
            location=f"{recordings} recording(s)",
            item_time=session.end_time,
        )

    # -- backups -----------------------------------------------------------------------

    def _backup(
        self, client: ApplianceClient, site: SiteInfo, request: TransferRequest, summary: Summary
    ) -> None:
        if request.dry_run:
            for destination in request.destinations:
                summary.plan(destination, DataType.BACKUP.value, ["a new backup"])
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
            password = self.config.sites[site.name].backup_password
            if password is not None:
                try:
                    backup = _encrypted(backup, password.get_secret_value())
                except EncryptionError as exc:
                    summary.problem(f"site {site.name}: backup: {exc}")
                    return
            key = moment.strftime("%Y%m%dT%H%M%SZ")
            for destination in request.destinations:
                self.deliver(
                    destination=destination,
                    data_type=DataType.BACKUP,
                    key=key,
                    site=site,
                    item=backup,
                    force=request.force,
                    summary=summary,
                    item_time=moment,
                )
        finally:
            shutil.rmtree(spool, ignore_errors=True)
