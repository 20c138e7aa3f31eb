"""The API client: OAuth, connections, retries, streaming downloads.

One :class:`ApplianceClient` per site and run. It asks for one OAuth token
and reuses it until shortly before it expires (an API account holds 30
tokens; a client that asks for one per request evicts everyone else's). A
401 triggers exactly one refresh and one retry. Connection errors, timeouts,
429 (honouring ``Retry-After``) and 5xx are retried with exponential backoff
and jitter, within a budget; other 4xx are not. Reports are spooled to a
temporary file and checked for truncation before they are parsed, so a cut
answer is retried whole instead of half-delivered; recordings and backups
are streamed to a file with their size verified and sha256 computed on the
way.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import os
import random
import re
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
from lxml import etree

from btic.appliance import parse
from btic.appliance.model import Product, ReportKind, Session
from btic.appliance.reports import (
    PERMISSION_ADVICE,
    REPORT_NAMES,
    DateWindow,
    ListingEntry,
    Window,
    recording_report,
)
from btic.secrets import Secret
from btic.types import RecordingKind

if TYPE_CHECKING:
    from btic.config import Config
from btic.errors import (
    ApplianceError,
    ApplianceUnreachable,
    AuthenticationError,
    PermissionDenied,
    RecordingExpired,
    RecordingUnavailable,
    ReportError,
    ReportTooLarge,
    TlsVerificationError,
)

TOKEN_MARGIN = 60.0  # seconds before expiry at which a token is replaced
DEFAULT_TOKEN_LIFETIME = 3600.0
MIN_TOKEN_LIFETIME = 2 * TOKEN_MARGIN
MAX_TOKEN_LIFETIME = 86400.0
#: The most btic reads into memory of a token, Command API or error answer.
SMALL_BODY_CAP = 1024 * 1024
#: RFC 6750's b64token: what a bearer token may hold.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_CHUNK = 1024 * 1024
_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,10}$")


@dataclass(frozen=True)
class ApiInfo:
    """``get_api_info``: version, the appliance's clock, the account's permissions."""

    api_version: str
    company_name: str | None
    timestamp: datetime
    permissions: dict[str, str]

    def allows(self, permission: str) -> bool:
        return self.permissions.get(permission, "0") not in ("0", "deny", "")

    @property
    def product(self) -> Product:
        """RS accounts have ``perm_reporting_support``; PA accounts ``perm_reporting``."""
        if (
            "perm_reporting" in self.permissions
            and "perm_reporting_support" not in self.permissions
        ):
            return "pa"
        return "rs"


@dataclass(frozen=True)
class Download:
    """A recording or backup on local disk, complete and verified."""

    path: Path
    size: int
    sha256: str
    extension: str
    filename: str | None
    #: False when the answer had no Content-Length and was not chunked: nothing
    #: told where the body should end, so a cut could pass for the end.
    verified: bool = True


class SiteSettings(Protocol):
    """What the client needs of a site: a :class:`btic.config.SiteConfig`, or a
    :class:`SiteConnection` made by hand."""

    @property
    def host(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def client_secret(self) -> Secret: ...
    @property
    def scheme(self) -> str: ...
    @property
    def verify_tls(self) -> bool: ...
    @property
    def ca_bundle(self) -> Path | None: ...
    @property
    def keep_alive(self) -> bool: ...
    @property
    def timeout(self) -> float: ...
    @property
    def product(self) -> Literal["rs", "pa", "auto"]: ...


@dataclass(frozen=True)
class SiteConnection:
    """Connection settings for a client made without a configuration file."""

    host: str
    client_id: str
    client_secret: Secret
    scheme: str = "https"
    verify_tls: bool = True
    ca_bundle: Path | None = None
    keep_alive: bool = False
    timeout: float = 60.0
    product: Literal["rs", "pa", "auto"] = "auto"


class ApplianceClient:
    """Talks to one appliance.

    :param name: the site's name, used in every message.
    :param site: connection settings (a ``SiteConfig``).
    :param retries: tries per request after the first.
    :param backoff: first backoff in seconds; doubles per try, with jitter.
    :param no_data_messages: extra "no matching data" phrases for this site.
    :param spool_dir: where reports are spooled (system temp by default).
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
    ):
        self.name = name
        self.site = site
        self.base_url = f"{site.scheme}://{site.host}"
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.classifier = parse.ErrorClassifier(no_data_messages)
        self.spool_dir = spool_dir
        self._sleep = sleep
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()
        self._product: Product | None = None if site.product == "auto" else site.product
        self._api_info: ApiInfo | None = None
        self._command_api: bool | None = None
        #: why the Command API could not be used, when it could not
        self.command_api_problem: str | None = None
        #: where the clock and the product were last read from, for ``btic check``
        self.clock_source = "get_api_info"
        self.product_source = "the configuration"
        # The latest Date header: (the appliance's time, time.monotonic() on receipt).
        self._date: tuple[datetime, float] | None = None
        #: requests made, by label ("token", "get_api_info", report names...).
        self.requests: Counter[str] = Counter()
        headers = {"User-Agent": "btic", "Accept": "*/*"}
        if not site.keep_alive:
            # The API guides ask clients to close the connection after each call.
            headers["Connection"] = "close"
        self._http = httpx.Client(
            verify=self._verify(site, base_dir),
            timeout=httpx.Timeout(site.timeout, connect=min(site.timeout, 30.0)),
            limits=httpx.Limits(max_keepalive_connections=None if site.keep_alive else 0),
            headers=headers,
            transport=transport,
            follow_redirects=False,
        )

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

    @staticmethod
    def _verify(site: SiteSettings, base_dir: Path | None) -> ssl.SSLContext | bool:
        if not site.verify_tls:
            return False
        if site.ca_bundle is not None:
            bundle = Path(site.ca_bundle)
            if not bundle.is_absolute() and base_dir is not None:
                bundle = base_dir / bundle
            return ssl.create_default_context(cafile=str(bundle))
        return True

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApplianceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the appliance -----------------------------------------------------------

    def api_info(self, refresh: bool = False) -> ApiInfo:
        """``get_api_info``; cached for the client's life unless ``refresh``."""
        if self._api_info is None or refresh:
            body = self._call(
                "GET", "/api/command", params={"action": "get_api_info"}, label="get_api_info"
            )
            root = self._document(body, "get_api_info")
            values: dict[str, Any] = {"permissions": {}}
            for name, child in parse.children(root):
                if name == "api_version":
                    values["api_version"] = (child.text or "").strip()
                elif name == "company_name":
                    values["company_name"] = (child.text or "").strip() or None
                elif name == "timestamp":
                    values["timestamp"] = self._timestamp(child.text)
                elif name == "permissions":
                    for _, permission in parse.children(child):
                        values["permissions"][permission.get("name", "")] = (
                            permission.text or ""
                        ).strip()
            if "timestamp" not in values:
                raise ReportError(
                    self.name, f"site {self.name}: get_api_info answered without a <timestamp>"
                )
            values.setdefault("api_version", "unknown")
            values.setdefault("company_name", None)
            self._api_info = ApiInfo(**values)
        return self._api_info

    def command_api(self) -> bool:
        """Whether the API account may use the Command API (``get_api_info``).

        The vendor's prerequisites for archiving are the reporting and backup
        permissions only, so an account without it is normal: btic then reads
        the clock from the HTTP ``Date`` header and the product from the
        configuration or the reports.
        """
        if self._command_api is None:
            try:
                self.api_info()
            except (PermissionDenied, ReportError) as exc:
                self._command_api = False
                self.command_api_problem = str(exc)
            else:
                self._command_api = True
        return self._command_api

    def _timestamp(self, text: str | None) -> datetime:
        try:
            return datetime.fromtimestamp(int((text or "").strip()), timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise ReportError(
                self.name,
                f"site {self.name}: get_api_info answered a <timestamp> that is not a time: "
                f"{(text or '')[:40]!r}",
            ) from None

    def appliance_now(self) -> datetime:
        """The appliance's clock: fresh from ``get_api_info``, or, without the
        Command API, from the ``Date`` header of its latest answer."""
        if self._command_api is not False:
            try:
                info = self.api_info(refresh=True)
            except (PermissionDenied, ReportError) as exc:
                if self._command_api:
                    raise  # it answered before: this is a failure, not a missing permission
                self._command_api = False
                self.command_api_problem = str(exc)
            else:
                self._command_api = True
                self.clock_source = "get_api_info"
                return info.timestamp
        if self._date is None:
            self._access_token()  # any answer carries a Date header
        if self._date is None:
            raise ApplianceError(
                self.name,
                f"site {self.name}: the appliance's answers carry no Date header and the API "
                "account may not use the Command API, so btic cannot read the appliance's clock; "
                "allow 'Command API: Read-Only' for the API account",
            )
        moment, received = self._date
        self.clock_source = "the HTTP Date header"
        return moment + timedelta(seconds=time.monotonic() - received)

    def _note_date(self, response: httpx.Response) -> None:
        header = response.headers.get("Date")
        if not header:
            return
        try:
            moment = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        self._date = (moment, time.monotonic())

    def check_health(self) -> dict[str, str]:
        body = self._call(
            "GET", "/api/command", params={"action": "check_health"}, label="check_health"
        )
        root = self._document(body, "check_health")
        return {name: (child.text or "").strip() for name, child in parse.children(root)}

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

    def _access_token(self) -> str:
        with self._token_lock:
            if self._token is not None and time.monotonic() < self._token_expires - TOKEN_MARGIN:
                return self._token
            secret = self.site.client_secret.get_secret_value()
            body = self._call(
                "POST",
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(self.site.client_id, secret),
                label="token",
                authenticated=False,
            )
            try:
                payload = json.loads(body)  # JSON even when labelled text/xml
                token = str(payload["access_token"])
                lifetime = float(payload.get("expires_in", 3600))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise AuthenticationError(
                    self.name, f"site {self.name}: /oauth2/token answered without an access token"
                ) from None
            if not _TOKEN.fullmatch(token):
                # Never echoed: it would be a credential, and may hold line breaks.
                raise AuthenticationError(
                    self.name,
                    f"site {self.name}: /oauth2/token answered a malformed access token "
                    f"({len(token)} characters, not a bearer token)",
                )
            self._token = token
            self._token_expires = time.monotonic() + _token_lifetime(lifetime)
            return token

    def _drop_token(self, token: str) -> None:
        with self._token_lock:
            if self._token == token:
                self._token = None

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        label: str,
        authenticated: bool = True,
        consume: Callable[[httpx.Response], Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One API call with the retry policy; ``consume`` reads a streamed body.

        Returns the body (at most :data:`SMALL_BODY_CAP` bytes) or what
        ``consume`` returned. Body errors inside ``consume`` are retried like
        connection errors.
        """
        what = " ".join(
            [
                label,
                *(
                    f"{k}={_shorten(v)}"
                    for k, v in {**(data or {}), **(params or {})}.items()
                    if k not in ("generate_report", "action", "grant_type")
                ),
            ]
        )
        refreshed = False
        attempt = 0
        last_problem = ""
        while True:
            headers = dict(extra_headers or {})
            token = None
            if authenticated:
                token = self._access_token()
                headers["Authorization"] = f"Bearer {token}"
            self.requests[label] += 1
            retry_after: float | None = None
            try:
                request = self._http.build_request(
                    method, self.base_url + path, params=params, data=data, headers=headers
                )
                response = self._http.send(
                    request, stream=True, auth=httpx.BasicAuth(*auth) if auth is not None else None
                )
                try:
                    status = response.status_code
                    self._note_date(response)
                    # Bodies of answers retried are never read: closing drops them.
                    if status == 401 and authenticated and not refreshed:
                        refreshed = True
                        self._drop_token(token or "")
                        continue
                    if status == 429 or status >= 500:
                        retry_after = _retry_after(response.headers.get("Retry-After"))
                        last_problem = f"HTTP {status}"
                    else:
                        self._raise_for_status(response, path, what, authenticated)
                        if consume is not None:
                            return consume(response)
                        return _read_capped(response, SMALL_BODY_CAP, what, self.name)
                finally:
                    response.close()
            except httpx.TransportError as exc:
                if _is_tls_failure(exc):
                    raise TlsVerificationError(
                        self.name,
                        f"site {self.name}: TLS certificate of {self.base_url} is not trusted "
                        f"({_reason(exc)}); set sites.{self.name}.ca_bundle to the CA that "
                        "signed it",
                    ) from None
                last_problem = _reason(exc)
            except _BodyIncomplete as exc:
                last_problem = str(exc)
            if attempt >= self.retries:
                raise ApplianceUnreachable(
                    self.name,
                    f"site {self.name}: {what} failed after {attempt + 1} tries: {last_problem}; "
                    f"check that {self.base_url} is reachable and healthy, then run again",
                )
            attempt += 1
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * random.uniform(
                0.5, 1.0
            )
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_retry_after))
            self._sleep(delay)

    def _raise_for_status(
        self, response: httpx.Response, path: str, what: str, authenticated: bool
    ) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status < 400:
            location = response.headers.get("Location", "")
            raise ApplianceError(
                self.name,
                f"site {self.name}: {what}: HTTP {status} {response.reason_phrase}"
                + (f" to {location[:200]}" if location else "")
                + "; btic follows no redirects (an appliance answers its API directly): check "
                f"sites.{self.name}.host",
            )
        body = _read_capped(response, SMALL_BODY_CAP, what, self.name)
        if path == "/oauth2/token" or status == 401:
            detail = _oauth_error(status, body)
            if authenticated:
                raise AuthenticationError(
                    self.name,
                    f"site {self.name}: {what}: the appliance refused a fresh token ({detail}); "
                    "the API account may have been disabled or its secret regenerated",
                )
            raise AuthenticationError(
                self.name,
                f"site {self.name}: the appliance refused the client ID and secret ({detail}); "
                f"check sites.{self.name}.client_id and client_secret against /login > "
                "Management > API Configuration",
            )
        if status in (403, 404):
            raise PermissionDenied(
                self.name,
                f"site {self.name}: {what}: HTTP {status} (Document Not Found): the API account "
                "lacks the permission for this API, or the XML API is disabled; check /login > "
                "Management > API Configuration",
            )
        raise ApplianceError(
            self.name, f"site {self.name}: {what}: HTTP {status} {response.reason_phrase}"
        )

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
            raise ReportError(self.name, f"site {self.name}: {what}: {exc}") from None

    def _guard_iter(self, items: Iterator[Any], what: str) -> Iterator[Any]:
        try:
            yield from items
        except ReportError as exc:
            raise ReportError(self.name, f"site {self.name}: {what}: {exc}") from None

    @contextmanager
    def _spooled_report(
        self, params: dict[str, str], what: str, max_bytes: int | None = None
    ) -> Iterator[Path]:
        """POST a report query and spool the answer; retried whole if cut short.

        :raises ReportTooLarge: the answer passed ``max_bytes`` (reading stops there).
        """
        with tempfile.NamedTemporaryFile(
            prefix="btic-report-", suffix=".xml", dir=self.spool_dir, delete=False
        ) as handle:
            path = Path(handle.name)

        def consume(response: httpx.Response) -> None:
            with path.open("wb") as out:
                head = b""
                tail = b""
                size = 0
                for chunk in response.iter_bytes(_CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise ReportTooLarge(
                            self.name, f"site {self.name}: {what}: over {max_bytes} bytes"
                        )
                    if len(head) < 512:
                        head += chunk[: 512 - len(head)]
                    tail = (tail + chunk)[-512:]
                    out.write(chunk)
            if not _looks_complete(head, tail):
                raise _BodyIncomplete("the XML answer was cut off before its end")

        try:
            # POST keeps long lsids lists out of URLs (the guides allow both).
            self._call(
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
        directory.mkdir(parents=True, exist_ok=True)

        def consume(response: httpx.Response) -> Download:
            content_type = response.headers.get("Content-Type", "")
            if "xml" in content_type or "html" in content_type:
                self._refuse_error_body(
                    _read_capped(response, SMALL_BODY_CAP, what, self.name), what
                )
            expected = response.headers.get("Content-Length")
            chunked = "chunked" in response.headers.get("Transfer-Encoding", "").lower()
            filename = _disposition_filename(response.headers.get("Content-Disposition", ""))
            fd, temp = tempfile.mkstemp(prefix="btic-download-", suffix=".part", dir=directory)
            digest = hashlib.sha256()
            size = 0
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_raw(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                if expected is not None and int(expected) != size:
                    raise _BodyIncomplete(f"got {size} of {expected} bytes")
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            extension = default_ext
            if filename and "." in filename:
                candidate = filename.rsplit(".", 1)[1]
                if _EXTENSION.match(candidate):
                    extension = candidate.lower()
            verified = expected is not None or chunked
            return Download(Path(temp), size, digest.hexdigest(), extension, filename, verified)

        def fetch() -> Download:
            # identity: Content-Length must count the bytes that land on disk.
            download: Download = self._call(
                method,
                path,
                params=params,
                label=label,
                consume=consume,
                extra_headers={"Accept-Encoding": "identity"},
            )
            return download

        first = fetch()
        if first.verified:
            return first
        # Nothing said where the body ends: a second download must agree byte for byte.
        second = fetch()
        second.path.unlink(missing_ok=True)
        if (second.size, second.sha256) == (first.size, first.sha256):
            return first
        first.path.unlink(missing_ok=True)
        raise ApplianceError(
            self.name,
            f"site {self.name}: {what}: the appliance sent no Content-Length, and two downloads "
            f"differ ({first.size} and {second.size} bytes): the body cannot be verified; "
            "it is asked for again on the next run",
        )

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


def _token_lifetime(seconds: float) -> float:
    """``expires_in`` kept within reason: 0, negative or NaN would mean a token per call."""
    if not math.isfinite(seconds):
        return DEFAULT_TOKEN_LIFETIME
    return min(max(seconds, MIN_TOKEN_LIFETIME), MAX_TOKEN_LIFETIME)


def _read_capped(response: httpx.Response, cap: int, what: str, name: str) -> bytes:
    """The whole body, refusing one larger than ``cap`` without holding it."""
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ReportError(
            name, f"site {name}: {what}: an answer of {int(declared)} bytes; at most {cap} expected"
        )
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > cap:
            raise ReportError(name, f"site {name}: {what}: an answer over {cap} bytes; refused")
    return bytes(body)


class _BodyIncomplete(Exception):
    """A body ended early: retried like a dropped connection."""


def _looks_complete(head: bytes, tail: bytes) -> bool:
    """Whether an XML document ends with its root element's end tag."""
    match = re.search(
        rb"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)[\s>/]",
        re.sub(rb"<\?.*?\?>", b"", head, flags=re.S),
    )
    if match is None:
        return False
    root = match.group(2)
    stripped = tail.rstrip()
    if re.search(rb"<(?:[A-Za-z_][\w.\-]*:)?" + re.escape(root) + rb"(\s[^<>]*)?/>$", stripped):
        return True
    return (
        re.search(rb"</(?:[A-Za-z_][\w.\-]*:)?" + re.escape(root) + rb"\s*>$", stripped) is not None
    )


def _shorten(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _disposition_filename(header: str) -> str | None:
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', header)
    return os.path.basename(match.group(1)) if match else None


def _oauth_error(status: int, body: bytes) -> str:
    try:
        error = json.loads(body).get("error", "")
    except (ValueError, AttributeError):
        return f"HTTP {status}"
    # The appliance's own words, kept to a safe alphabet: never a line break or a token.
    return f"HTTP {status} {re.sub(r'[^A-Za-z0-9_ .-]', '', str(error))[:60]}".strip()


def _is_tls_failure(exc: Exception) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def permission_advice(permission: str) -> str:
    return PERMISSION_ADVICE.get(permission, permission)
