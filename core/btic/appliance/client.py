"""The API client: the appliance's Command, Reporting and Backup APIs.

One :class:`ApplianceClient` per site and run, shared by every transfer and
thread of the run. Its :class:`~btic.appliance.connection.Connection` owns
the HTTP side (the one OAuth token, retries, the Date clock); this module
owns what is asked and what the answers mean. Reports are spooled to a
temporary file and checked for truncation and size before they are parsed,
so a cut answer is retried whole instead of half-delivered; recordings and
backups are streamed to a file with their size verified and sha256 computed
on the way.

* :mod:`btic.appliance.connection` — tokens, retries, redirects refused, Date;
* :mod:`btic.appliance.answers` — size caps, completeness, headers, reasons;
* :mod:`btic.appliance.downloads` — a recording's or backup's body into a file;
* :mod:`btic.appliance.body` — large bodies read straight from the socket;
* :mod:`btic.appliance.site` — settings in, API info (read from its document) and
  downloads out.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from lxml import etree

from btic.appliance import parse
from btic.appliance.answers import SMALL_BODY_CAP, end_is_provable, read_capped
from btic.appliance.connection import CallObserver, Connection
from btic.appliance.downloads import save_download, save_report, spool_writes
from btic.appliance.model import Product, ReportKind, Session
from btic.appliance.reports import (
    PERMISSION_ADVICE,
    REPORT_NAMES,
    DateWindow,
    ListingEntry,
    Window,
    recording_report,
)
from btic.appliance.site import (
    ApiInfo,
    Download,
    SiteConnection,
    SiteSettings,
    read_api_info,
)
from btic.types import RecordingKind

if TYPE_CHECKING:
    from btic.config import Config
from btic.errors import (
    ApplianceError,
    PermissionDenied,
    RecordingExpired,
    RecordingUnavailable,
    ReportError,
    UnprovenBody,
)


class ApplianceClient:
    """Talks to one appliance.

    :param name: the site's name, used in every message.
    :param site: connection settings (a ``SiteConfig``).
    :param retries: tries per request after the first.
    :param backoff: first backoff in seconds; doubles per try, with jitter.
    :param no_data_messages: extra "no matching data" phrases for this site.
    :param spool_dir: where reports are spooled (system temp by default).
    :param observer: told of every call, retry and token (the daemon's metrics).
    """

    def __init__(
        self,
        name: str,
        site: SiteSettings,
        *,
        base_dir: Path | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 300.0,
        no_data_messages: tuple[str, ...] = (),
        spool_dir: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        observer: CallObserver | None = None,
    ):
        self.name = name
        self.site = site
        self.connection = Connection(
            name,
            site,
            base_dir=base_dir,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
            sleep=sleep,
            transport=transport,
            observer=observer,
        )
        self.base_url = self.connection.base_url
        self.classifier = parse.ErrorClassifier(no_data_messages)
        self.spool_dir = spool_dir
        self._product: Product | None = None if site.product == "auto" else site.product
        self._api_info: ApiInfo | None = None
        self._command_api: bool | None = None
        #: where the clock and the product were last read from, for ``btic check``
        self.clock_source = "get_api_info"
        self.product_source = "the configuration"

    @property
    def requests(self) -> Counter[str]:
        """Requests made, by label ("token", "get_api_info", report names...)."""
        return self.connection.requests

    @classmethod
    def for_site(cls, name: str, config: Config, **kwargs: Any) -> ApplianceClient:
        """The client of ``config.sites[name]``."""
        site = config.sites[name]
        return cls(
            name,
            site,
            base_dir=config.base_dir,
            no_data_messages=tuple(site.no_data_messages),
            **kwargs,
        )

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> ApplianceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the appliance -----------------------------------------------------------

    def api_info(self, refresh: bool = False) -> ApiInfo:
        """``get_api_info``; cached for the client's life unless ``refresh``."""
        if self._api_info is None or refresh:
            body = self.connection.call(
                "GET", "/api/command", params={"action": "get_api_info"}, label="get_api_info"
            )
            self._api_info = read_api_info(self._document(body, "get_api_info"), self.name)
        return self._api_info

    def command_api(self) -> bool:
        """Whether the API account may use the Command API (``get_api_info``).

        The vendor's prerequisites for archiving are the reporting and backup
        permissions only, so an account without it is normal: btic then reads
        the clock from the HTTP ``Date`` header and the product from the
        configuration or the reports.
        """
        if self._command_api is None:
            self._api_info_if_allowed(refresh=False)
        return bool(self._command_api)

    def _api_info_if_allowed(self, refresh: bool) -> ApiInfo | None:
        """``get_api_info``, or None when the account may not use the Command API
        (learned on the first refusal; a refusal after answers is a failure)."""
        try:
            info = self.api_info(refresh=refresh)
        except (PermissionDenied, ReportError):
            if self._command_api:
                raise  # it answered before: this is a failure, not a missing permission
            self._command_api = False
            return None
        self._command_api = True
        return info

    def appliance_now(self) -> datetime:
        """The appliance's clock: fresh from ``get_api_info``, or, without the
        Command API, from the ``Date`` header of its latest answer."""
        if self._command_api is not False:
            info = self._api_info_if_allowed(refresh=True)
            if info is not None:
                self.clock_source = "get_api_info"
                return info.timestamp
        if self.connection.last_date is None:
            self.connection.access_token()  # any answer carries a Date header
        date = self.connection.last_date
        if date is None:
            raise ApplianceError(
                self.name,
                f"site {self.name}: the appliance's answers carry no Date header and the API "
                "account may not use the Command API, so btic cannot read the appliance's clock; "
                "allow 'Command API: Read-Only' for the API account",
            )
        moment, received = date
        self.clock_source = "the HTTP Date header"
        return moment + timedelta(seconds=time.monotonic() - received)

    @property
    def product(self) -> Product:
        """``rs`` or ``pa``; asks the appliance when the site says ``auto``: its
        permissions (``get_api_info``), or else which listing report it knows."""
        if self._product is None:
            self._product = self.api_info().product if self.command_api() else self._probe_product()
            self.product_source = "get_api_info" if self._command_api else "the reports"
        return self._product

    def _probe_product(self) -> Product:
        products: tuple[Product, ...] = ("rs", "pa")
        for product in products:
            report: ReportKind = "access" if product == "pa" else "support"
            try:
                self.probe_report(REPORT_NAMES[(product, report)].listing)
            except (PermissionDenied, ReportError):
                continue
            return product
        raise ApplianceError(
            self.name,
            f"site {self.name}: the API account may not use the Command API and neither "
            "SupportSessionListing nor AccessSessionListing answered, so btic cannot tell an RS "
            f'from a PA appliance; set sites.{self.name}.product = "rs" or "pa" (and check the '
            "account's reporting permissions)",
        )

    def probe_report(self, name: str) -> None:
        """Ask a listing report for one second of history, to learn whether the
        account may use it.

        :raises PermissionDenied: the account lacks the permission.
        :raises ReportError: the appliance refused the report (unknown to it).
        """
        since = self.appliance_now() - timedelta(seconds=1)
        window = Window("end", since, since + timedelta(seconds=1))
        self._listing(name, window)

    # -- reports -------------------------------------------------------------------

    def list_sessions(self, report: ReportKind, window: Window | DateWindow) -> list[ListingEntry]:
        """The listing report for ``window``: lsids, lseq, recording flag, external key."""
        return self._listing(REPORT_NAMES[(self.product, report)].listing, window)

    def _listing(self, name: str, window: Window | DateWindow) -> list[ListingEntry]:
        params = {"generate_report": name, **window.params()}
        with self._spooled_report(params, f"{name} {window.describe()}") as path:
            return list(
                self._guard(
                    lambda: parse.iter_listing(path, classifier=self.classifier),
                    f"{name} {window.describe()}",
                )
            )

    def iter_sessions(
        self,
        report: ReportKind,
        *,
        lsids: list[str] | None = None,
        window: Window | DateWindow | None = None,
        on_unreadable: parse.Unreadable | None = None,
        max_bytes: int | None = None,
    ) -> Iterator[tuple[Session, bytes]]:
        """Full session reports, parsed one ``<session>`` at a time.

        Give ``lsids`` (sent as one ``lsids=`` batch) or a ``window``.

        :param on_unreadable: receives (lsid, reason) for a session that cannot
            be read, and the rest is read on (see :func:`parse.iter_sessions`).
        :param max_bytes: refuse an answer larger than this, before parsing it.
        :raises ReportTooLarge: then.
        """
        name = REPORT_NAMES[(self.product, report)].full
        if lsids is not None:
            if not lsids:
                return
            params = {"generate_report": name, "lsids": ",".join(lsids)}
            more = "..." if len(lsids) > 3 else ""
            what = f"{name} lsids={','.join(lsids[:3])}{more} ({len(lsids)})"
        elif window is not None:
            params = {"generate_report": name, **window.params()}
            what = f"{name} {window.describe()}"
        else:
            raise ValueError("give lsids or a window")
        with self._spooled_report(params, what, max_bytes) as path:
            host = self.site.host
            yield from self._guard(
                lambda: parse.iter_sessions(
                    path,
                    product=self.product,
                    report=report,
                    host=host,
                    classifier=self.classifier,
                    on_unreadable=on_unreadable,
                ),
                what,
            )

    def download_recording(
        self,
        kind: RecordingKind,
        lsid: str,
        instance: int | None,
        directory: Path,
        *,
        as_text: bool = False,
    ) -> Download:
        """Download one recording into ``directory``.

        :param instance: as the API numbers it (from 0).
        :param as_text: a command shell's output as text (PA's ``format=txt``).
        :raises RecordingExpired: the appliance no longer has it.
        :raises RecordingUnavailable: the appliance has no such recording.
        """
        name = recording_report(self.product, kind)
        params = {"generate_report": name, "lsid": lsid}
        if instance is not None:
            params["instance"] = str(instance)
        if as_text:
            params["format"] = "txt"
        what = f"{name} lsid={lsid}" + (f" instance={instance}" if instance is not None else "")
        return self._download("GET", "/api/reporting", params, directory, what, label=name)

    def download_backup(self, directory: Path) -> Download:
        """Download a site backup (``.nsb``) into ``directory``."""
        return self._download(
            "GET", "/api/backup", {}, directory, "backup", label="backup", default_ext="nsb"
        )

    # -- plumbing: tokens, retries, bodies ------------------------------------------

    def _document(self, body: bytes, what: str) -> etree._Element:
        root = self._guard(lambda: parse.parse_document(body, self.classifier), what)
        if root is None:
            raise ReportError(
                self.name, f"site {self.name}: {what}: the appliance returned no data"
            )
        root_element: etree._Element = root
        return root_element

    def _guard(self, produce: Callable[[], Any], what: str) -> Any:
        """Re-raise parse errors with the site and request named."""
        try:
            result = produce()
            if isinstance(result, Iterator):
                return self._guard_iter(result, what)
            return result
        except ReportError as exc:
            raise type(exc)(self.name, f"site {self.name}: {what}: {exc}") from None

    def _guard_iter(self, items: Iterator[Any], what: str) -> Iterator[Any]:
        try:
            yield from items
        except ReportError as exc:  # its kind kept: a malformed report is split by the caller
            raise type(exc)(self.name, f"site {self.name}: {what}: {exc}") from None

    @contextmanager
    def _spooled_report(
        self, params: dict[str, str], what: str, max_bytes: int | None = None
    ) -> Iterator[Path]:
        """POST a report query and spool the answer; retried whole if cut short.

        :raises ReportTooLarge: the answer passed ``max_bytes`` (reading stops there).
        :raises SpoolError: the answer could not be written to the spool.
        """
        directory = self.spool_dir or Path(tempfile.gettempdir())
        with (
            spool_writes(directory),
            tempfile.NamedTemporaryFile(
                prefix="btic-report-", suffix=".xml", dir=directory, delete=False
            ) as handle,
        ):
            path = Path(handle.name)

        def consume(response: httpx.Response) -> None:
            with spool_writes(directory):
                save_report(response, path, max_bytes, site=self.name, what=what)

        try:
            # POST keeps long lsids lists out of URLs (the guides allow both).
            self.connection.call(
                "POST",
                "/api/reporting",
                data=params,
                label=params["generate_report"],
                consume=consume,
            )
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _download(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        directory: Path,
        what: str,
        *,
        label: str,
        default_ext: str = "flv",
    ) -> Download:
        spool = self.spool_dir or directory
        with spool_writes(spool):
            directory.mkdir(parents=True, exist_ok=True)

        def consume(response: httpx.Response) -> Download:
            content_type = response.headers.get("Content-Type", "")
            if "xml" in content_type or "html" in content_type:
                self._refuse_error_body(
                    read_capped(response, SMALL_BODY_CAP, what, self.name), what
                )
            if not end_is_provable(response.headers):
                # A body that ends where the connection closes cannot be told from one
                # a proxy cut at its size limit (the same byte every time): refused
                # before a byte is read, and asked for again on the next run.
                raise UnprovenBody(
                    self.name,
                    f"site {self.name}: {what}: the answer has neither a Content-Length nor "
                    "chunked encoding, so its end cannot be proven and it is not archived; "
                    " let the appliance's answers reach btic with their "
                    "Content-Length (a proxy between them must not remove it); the item stays "
                    "pending",
                )
            with spool_writes(spool):
                return save_download(response, directory, default_ext=default_ext)

        # identity: Content-Length must count the bytes that land on disk.
        download: Download = self.connection.call(
            method,
            path,
            params=params,
            label=label,
            consume=consume,
            extra_headers={"Accept-Encoding": "identity"},
        )
        return download

    def _refuse_error_body(self, body: bytes, what: str) -> None:
        message = parse.error_text(body)
        if message is None:
            raise ReportError(
                self.name,
                f"site {self.name}: {what}: the appliance answered with a page, not a file",
            )
        if self.classifier.is_expired(message):
            raise RecordingExpired(self.name, f"site {self.name}: {what}: {message}")
        raise RecordingUnavailable(
            self.name, f"site {self.name}: {what}: the appliance answered: {message}"
        )


def permission_advice(permission: str) -> str:
    return PERMISSION_ADVICE.get(permission, permission)


__all__ = [
    "ApiInfo",
    "ApplianceClient",
    "Download",
    "SiteConnection",
    "SiteSettings",
    "permission_advice",
]
