"""``btic import-xml``: sessions from report files downloaded earlier.

The files' sessions go through a :class:`~btic.transfer.sessions.SessionRun`
like listed ones, so the ledger is kept as for any transfer and a later sync
does not deliver them again. Recordings of those sessions are fetched from
the named site.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from btic.appliance.client import ApplianceClient
from btic.appliance.model import Product, ReportKind, Session
from btic.appliance.parse import Unreadable, iter_sessions
from btic.appliance.reports import session_report_kind
from btic.errors import ApplianceError
from btic.transfer.engine import Engine, TransferRequest
from btic.transfer.sessions import SessionRun
from btic.transfer.summary import Summary
from btic.types import RECORDING_KINDS, DataType, SiteInfo


def import_reports(
    engine: Engine,
    files: Iterable[Path],
    *,
    site: str | None,
    host: str | None,
    product: Product | None,
    destinations: tuple[str, ...],
    data_types: tuple[DataType, ...],
    force: bool = False,
) -> Summary:
    """Deliver the sessions of report files downloaded earlier.

    :param site: the configured site the files came from; recordings are
        fetched from it. When None, the site whose host is ``host``, if any.
    :param host: the appliance's host name, when no site is given.
    :param product: how to read the files; by default the site's.
    """
    summary = Summary()
    if site is None:
        # Reports from a configured appliance count against that site's ledger.
        site = next((name for name, s in engine.config.sites.items() if s.host == host), None)
    wants_recordings = any(dt in RECORDING_KINDS for dt in data_types)
    client = engine.client(site) if site is not None and wants_recordings else None
    product = product or _product_of(engine, site, client)
    if site is not None:
        host = engine.config.sites[site].host
    site_info = SiteInfo(site or str(host), str(host), product)
    engine.configure(destinations)
    request = TransferRequest(
        site=site_info.name, destinations=destinations, data_types=data_types, force=force
    )
    importer = _Importer(engine, client, site_info, request, product, summary)
    try:
        for path in files:
            importer.read(path)
    finally:
        # Sessions a batching destination holds are made durable and recorded.
        engine.deliverer.flush()
    return summary


class _Importer:
    """Feeds the sessions of report files to one session run per report kind."""

    def __init__(
        self,
        engine: Engine,
        client: ApplianceClient | None,
        site: SiteInfo,
        request: TransferRequest,
        product: Product,
        summary: Summary,
    ):
        self.engine = engine
        self.client = client
        self.site = site
        self.request = request
        self.product = product
        self.summary = summary
        self.base_report: ReportKind = "access" if product == "pa" else "support"
        self.runs: dict[ReportKind, SessionRun] = {}

    def read(self, path: Path) -> None:
        found = 0
        batch: list[tuple[Session, bytes]] = []
        try:
            for session, xml in iter_sessions(
                path,
                product=self.product,
                report=self.base_report,
                host=self.site.host,
                on_unreadable=_reporter(self.summary, path),
            ):
                found += 1
                batch.append((session, xml))
                if len(batch) >= FEED_BATCH:
                    self._feed_batch(path, batch)
                    batch = []
        except ApplianceError as exc:
            self._feed_batch(path, batch)
            self.summary.problem(f"{path}: {str(exc).removeprefix(': ')}")
            return
        self._feed_batch(path, batch)
        if not found:
            self.summary.problem(
                f"{path}: holds no <session> (a session report's <session_list>, or one archived "
                "<session>, is expected); nothing delivered from it"
            )

    def _feed_batch(self, path: Path, batch: list[tuple[Session, bytes]]) -> None:
        """Deliver a batch of sessions read from ``path``, asking the ledger once per
        batch (not once per session) what it has."""
        by_report: dict[ReportKind, list[tuple[Session, bytes]]] = {}
        for session, xml in batch:
            report: ReportKind = (
                "presentation" if session.session_type == "presentation" else self.base_report
            )
            if report == "presentation":
                session = session.model_copy(update={"report": "presentation"})
            if session.end_time is None:
                self.summary.note(
                    f"{path}: session {session.lsid} was still in progress when the "
                    "report was saved; not imported (a sync will transfer it)"
                )
                continue
            by_report.setdefault(report, []).append((session, xml))
        for report, sessions in by_report.items():
            run = self._run_for(report)
            if run is not None:
                run.feed(sessions)

    def _run_for(self, report: ReportKind) -> SessionRun | None:
        kinds = tuple(
            dt for dt in self.request.data_types if session_report_kind(self.product, dt) == report
        )
        if not kinds:
            return None
        run = self.runs.get(report)
        if run is None:
            run = self.runs[report] = SessionRun(
                self.engine,
                self.client,
                self.site,
                self.request,
                report,
                kinds,
                datetime.now(timezone.utc),
                self.summary,
            )
        return run


#: Sessions read from a file before the ledger is asked what it has of them.
FEED_BATCH = 200


def _reporter(summary: Summary, path: Path) -> Unreadable:
    def unreadable(_lsid: str, reason: str) -> None:
        summary.problem(f"{path}: {reason}")

    return unreadable


def _product_of(engine: Engine, site: str | None, client: ApplianceClient | None) -> Product:
    if client is not None:
        return client.product
    configured = engine.config.sites[site].product if site is not None else "auto"
    return "rs" if configured == "auto" else configured
