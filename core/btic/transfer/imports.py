"""``btic import-xml``: sessions from report files downloaded earlier.

The files' sessions go through a :class:`~btic.transfer.sessions.SessionRun`
like listed ones, so the ledger is kept as for any transfer and a later sync
does not deliver them again. Recordings of those sessions are fetched from
the named site.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from btic.appliance.client import ApplianceClient
from btic.appliance.model import PRODUCT_NAMES, Product, ReportKind, Session
from btic.appliance.parse import Unreadable, detect_product, iter_sessions
from btic.appliance.reports import session_report_kind
from btic.errors import ApplianceError
from btic.transfer.context import TransferRequest
from btic.transfer.engine import Engine
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
    if site is not None:
        host = engine.config.sites[site].host
    engine.configure(destinations)
    request = TransferRequest(
        site=site or str(host), destinations=destinations, data_types=data_types, force=force
    )
    expected = _expected_product(engine, site, client, product)
    importer = _Importer(engine, client, site or str(host), str(host), request, expected, summary)
    try:
        for path in files:
            importer.read(path)
    finally:
        # Sessions a batching destination holds are made durable and recorded.
        engine.deliverer.flush()
    return summary


@dataclass(frozen=True)
class ExpectedProduct:
    """The product the files should be of, and who says so (for the message when a
    file is of the other): ``--product``, or the site's configuration or answer."""

    product: Product
    source: str
    fix: str


class _Importer:
    """Feeds the sessions of report files to one session run per product and report
    kind; each file is read as the product its elements show."""

    def __init__(
        self,
        engine: Engine,
        client: ApplianceClient | None,
        site: str,
        host: str,
        request: TransferRequest,
        expected: ExpectedProduct | None,
        summary: Summary,
    ):
        self.engine = engine
        self.client = client
        self.site = site
        self.host = host
        self.request = request
        self.expected = expected
        self.summary = summary
        self.runs: dict[tuple[Product, ReportKind], SessionRun] = {}

    def read(self, path: Path) -> None:
        product = self._product_of(path)
        if product is None:
            return
        base_report: ReportKind = "access" if product == "pa" else "support"
        found = 0
        batch: list[tuple[Session, bytes]] = []
        try:
            for session, xml in iter_sessions(
                path,
                product=product,
                report=base_report,
                host=self.host,
                on_unreadable=_reporter(self.summary, path),
            ):
                found += 1
                batch.append((session, xml))
                if len(batch) >= FEED_BATCH:
                    self._feed_batch(path, product, base_report, batch)
                    batch = []
        except ApplianceError as exc:
            self._feed_batch(path, product, base_report, batch)
            self.summary.problem(f"{path}: {str(exc).removeprefix(': ')}")
            return
        self._feed_batch(path, product, base_report, batch)
        if not found:
            self.summary.problem(
                f"{path}: holds no <session> (a session report's <session_list>, or one archived "
                "<session>, is expected); nothing delivered from it"
            )

    def _product_of(self, path: Path) -> Product | None:
        """The file's product: what its elements show, else what is expected, else RS.
        None, with the problem said, when the file contradicts what is expected."""
        try:
            detected = detect_product(path)
        except ApplianceError as exc:
            self.summary.problem(f"{path}: {str(exc).removeprefix(': ')}")
            return None
        expected = self.expected
        if detected is None:
            return expected.product if expected else "rs"
        product, evidence = detected
        if expected is not None and expected.product != product:
            self.summary.problem(
                f"{path}: a {PRODUCT_NAMES[product]} report (it has {evidence}), not "
                f"{PRODUCT_NAMES[expected.product]} as {expected.source} says; nothing "
                f"delivered from it: {expected.fix}"
            )
            return None
        return product

    def _feed_batch(
        self,
        path: Path,
        product: Product,
        base_report: ReportKind,
        batch: list[tuple[Session, bytes]],
    ) -> None:
        """Deliver a batch of sessions read from ``path``, asking the ledger once per
        batch (not once per session) what it has."""
        by_report: dict[ReportKind, list[tuple[Session, bytes]]] = {}
        for session, xml in batch:
            report: ReportKind = (
                "presentation" if session.session_type == "presentation" else base_report
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
            run = self._run_for(product, report)
            if run is not None:
                run.feed(sessions)

    def _run_for(self, product: Product, report: ReportKind) -> SessionRun | None:
        kinds = tuple(
            dt for dt in self.request.data_types if session_report_kind(product, dt) == report
        )
        if not kinds:
            return None
        run = self.runs.get((product, report))
        if run is None:
            run = self.runs[(product, report)] = SessionRun(
                self.engine.context,
                self.client,
                SiteInfo(self.site, self.host, product),
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


def _expected_product(
    engine: Engine, site: str | None, client: ApplianceClient | None, given: Product | None
) -> ExpectedProduct | None:
    """What the files should be: ``--product``, else the site's product (its
    configuration, or its own answer under ``auto``); None when nothing says."""
    if given is not None:
        other = "pa" if given == "rs" else "rs"
        fix = f"give --product {other}, or leave it out"
        return ExpectedProduct(given, f"--product {given}", fix)
    if site is None:
        return None
    configured = engine.config.sites[site].product
    product = client.product if client is not None else configured
    if product == "auto":
        return None
    return ExpectedProduct(
        product,
        f"site {site} (sites.{site}.product)" if configured != "auto" else f"site {site}",
        "import it with --site or --host of the appliance it came from",
    )
