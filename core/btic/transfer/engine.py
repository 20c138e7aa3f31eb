"""The engine: one transfer at a time.

:meth:`Engine.run` takes the leases of a transfer, splits it by report
(support, presentation, access) into
:class:`~btic.transfer.sessions.SessionRun` passes and takes the backup
itself. Every item, whatever its kind, reaches a destination through the
run's :class:`~btic.transfer.delivery.Deliverer`, which records the outcome in
the ledger.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import structlog
from structlog.typing import FilteringBoundLogger

from btic import encryption, logs
from btic.appliance.client import ApplianceClient
from btic.appliance.downloads import spool_writes
from btic.appliance.model import ReportKind
from btic.appliance.pool import ClientPool
from btic.appliance.reports import session_report_kind
from btic.config import Config
from btic.encryption import EncryptionError
from btic.errors import ApplianceError, SpoolError
from btic.leases import Leases, lease_name
from btic.plugins import PluginManager
from btic.state import StateStore
from btic.transfer.context import RunContext, TransferRequest
from btic.transfer.delivery import Deliverer
from btic.transfer.sealing import Sealer
from btic.transfer.sessions import SessionRun
from btic.transfer.spool import RunSpool, spool_parent
from btic.transfer.summary import Reporter, SilentReporter, Summary
from btic.types import (
    PRODUCT_DATA_TYPES,
    Backup,
    DataType,
    SiteInfo,
)


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


class Engine:
    """Runs transfers for one configuration and state database.

    :param concurrency: recordings downloaded at once (as many more may be
        delivering); None takes each site's ``download_concurrency``.
    :param clients: the appliance clients to use (a daemon keeps them, and
        their tokens, across runs); by default the engine makes its own and
        closes them with itself.
    :param stop: set to stop after the items in hand (a daemon shares one
        among its runs); by default the engine's own.
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
        clients: ClientPool | None = None,
        stop: threading.Event | None = None,
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
        self._own_clients = clients is None
        self.clients = clients or ClientPool(config, spool_dir=self.spool_root)
        self._configured: set[str] = set()
        self.leases = Leases(state, run_id)
        #: the one path from an item to a plugin, and its outcome in the ledger
        self.deliverer = Deliverer(
            plugins,
            state,
            run_id=run_id,
            reporter=self.reporter,
            log=self.log,
            scrub=logs.scrubbing(config),
            stop=stop,
            sealer=Sealer(
                {
                    name: destination.sealing
                    for name, destination in config.destinations.items()
                    if destination.sealing is not None
                }
            ),
        )
        #: set to stop after the items in hand (SIGINT, SIGTERM)
        self.stop = self.deliverer.stop
        #: what a session run uses of the engine
        self.context = RunContext(
            config=config,
            state=state,
            deliverer=self.deliverer,
            stop=self.stop,
            spool=self.spool,
            concurrency=concurrency,
        )

    def client(self, site: str) -> ApplianceClient:
        """The client of ``site``, shared by every transfer and thread of the run, so
        a run asks the appliance for one token per site: an API account holds 30,
        and the 31st logs out the oldest holder (another integration, perhaps)."""
        return self.clients.client(site)

    def close(self) -> None:
        """Give back the run's leases, close its own appliance clients, remove its spool."""
        self.leases.close()
        if self._own_clients:
            self.clients.close()
        self._spool.close()

    def spool(self) -> Path:
        """A directory for one download, inside this run's spool.

        :raises SpoolError: it cannot be made (a full disk).
        """
        with spool_writes(self.spool_root):
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
                    by = (
                        "another transfer of this run"
                        if holder == self.leases.owner
                        else f"another run ({holder})"
                    )
                    summary.held(
                        destination,
                        data_type.value,
                        f"site {request.site}: {data_type.value} for {destination} is being "
                        f"transferred by {by}; skipped here",
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
            # Batches are made durable and recorded while the leases are still held.
            self.deliverer.flush()
            self.leases.release(taken)
        return summary

    def _run(self, request: TransferRequest, summary: Summary) -> None:
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
                self.context,
                client,
                site,
                request,
                report,
                tuple(data_types),
                appliance_now,
                summary,
            )
            try:
                run.execute()
            except ApplianceError as exc:
                summary.problem(str(exc))
        if DataType.BACKUP in wanted and not self.stop.is_set():
            self._backup(client, site, request, summary)

    # -- backups -----------------------------------------------------------------------

    def _backup(
        self, client: ApplianceClient, site: SiteInfo, request: TransferRequest, summary: Summary
    ) -> None:
        if request.dry_run:
            for destination in request.destinations:
                summary.plan(destination, DataType.BACKUP.value, ["a new backup"])
            return
        spool: Path | None = None
        try:
            try:
                spool = self.spool()
                download = client.download_backup(spool)
            except (ApplianceError, SpoolError) as exc:
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
            for destination in request.destinations:
                self.deliverer.deliver(
                    destination=destination,
                    data_type=DataType.BACKUP,
                    site=site,
                    item=backup,
                    force=request.force,
                    summary=summary,
                    item_time=moment,
                )
        finally:
            if spool is not None:
                shutil.rmtree(spool, ignore_errors=True)
