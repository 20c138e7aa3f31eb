"""One site's HTTP conversation: TLS, the OAuth token, retries, the appliance's Date.

A :class:`Connection` asks for one OAuth token and reuses it until shortly
before it expires (an API account holds 30 tokens; a client that asks for one
per request evicts everyone else's). A 401 triggers exactly one refresh and
one retry. Connection errors, timeouts, 429 (honouring ``Retry-After``) and
5xx are retried with exponential backoff and jitter, within a budget; other
4xx are not, and redirects are refused. Every answer's ``Date`` header is
kept: it is the appliance's clock when the Command API is not allowed.
"""

from __future__ import annotations

import email.utils
import json
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import httpx

from btic.appliance.answers import (
    SMALL_BODY_CAP,
    TOKEN_MARGIN,
    TOKEN_PATTERN,
    BodyIncomplete,
    is_tls_failure,
    oauth_error,
    read_capped,
    reason,
    retry_after_seconds,
    shorten,
    token_lifetime,
)
from btic.appliance.site import SiteSettings
from btic.errors import (
    ApplianceError,
    ApplianceUnreachable,
    AuthenticationError,
    PermissionDenied,
    TlsVerificationError,
)


class CallObserver(Protocol):
    """Who watches the appliance calls (the daemon's metrics)."""

    def answered(self, site: str, label: str, seconds: float, outcome: str) -> None:
        """One try of ``label`` ended: ``ok``, ``retry`` (to be tried again) or ``error``."""

    def retried(self, site: str, label: str) -> None:
        """``label`` is tried again after a pause."""

    def token_granted(self, site: str) -> None:
        """The appliance granted an OAuth token."""


class Connection:
    """The HTTP side of one :class:`~btic.appliance.client.ApplianceClient`.

    :param name: the site's name, used in every message.
    :param site: connection settings.
    :param retries: tries per request after the first.
    :param backoff: first backoff in seconds; doubles per try, with jitter.
    :param sleep: how to wait between tries (tests pass one that does not).
    :param transport: an httpx transport (tests may inject one).
    :param observer: told of every try, pause and token (metrics).
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
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        observer: CallObserver | None = None,
    ):
        self.name = name
        self.site = site
        self.observer = observer
        self.base_url = f"{site.scheme}://{site.host}"
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()
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

    def note_date(self, response: httpx.Response) -> None:
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

    def access_token(self) -> str:
        with self._token_lock:
            if self._token is not None and time.monotonic() < self._token_expires - TOKEN_MARGIN:
                return self._token
            secret = self.site.client_secret.get_secret_value()
            body = self.call(
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
            if not TOKEN_PATTERN.fullmatch(token):
                # Never echoed: it would be a credential, and may hold line breaks.
                raise AuthenticationError(
                    self.name,
                    f"site {self.name}: /oauth2/token answered a malformed access token "
                    f"({len(token)} characters, not a bearer token)",
                )
            self._token = token
            self._token_expires = time.monotonic() + token_lifetime(lifetime)
            if self.observer is not None:
                self.observer.token_granted(self.name)
            return token

    def drop_token(self, token: str) -> None:
        with self._token_lock:
            if self._token == token:
                self._token = None

    def call(
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
                    f"{k}={shorten(v)}"
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
                token = self.access_token()
                headers["Authorization"] = f"Bearer {token}"
            self.requests[label] += 1
            retry_after: float | None = None
            started = time.monotonic()
            outcome = "error"
            try:
                request = self._http.build_request(
                    method, self.base_url + path, params=params, data=data, headers=headers
                )
                response = self._http.send(
                    request, stream=True, auth=httpx.BasicAuth(*auth) if auth is not None else None
                )
                try:
                    status = response.status_code
                    self.note_date(response)
                    # Bodies of answers retried are never read: closing drops them.
                    if status == 401 and authenticated and not refreshed:
                        refreshed = True
                        outcome = "retry"
                        self.drop_token(token or "")
                        continue
                    if status == 429 or status >= 500:
                        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                        last_problem = f"HTTP {status}"
                        outcome = "retry"
                    else:
                        self._raise_for_status(response, path, what, authenticated)
                        try:
                            answer = (
                                consume(response)
                                if consume is not None
                                else read_capped(response, SMALL_BODY_CAP, what, self.name)
                            )
                        except BodyIncomplete:
                            outcome = "retry"
                            raise
                        outcome = "ok"
                        return answer
                finally:
                    response.close()
                    if self.observer is not None:
                        self.observer.answered(
                            self.name, label, time.monotonic() - started, outcome
                        )
            except httpx.TransportError as exc:
                if is_tls_failure(exc):
                    raise TlsVerificationError(
                        self.name,
                        f"site {self.name}: TLS certificate of {self.base_url} is not trusted "
                        f"({reason(exc)}); set sites.{self.name}.ca_bundle to the CA that "
                        "signed it",
                    ) from None
                last_problem = reason(exc)
                self._observe(label, started)
            except BodyIncomplete as exc:
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
            if self.observer is not None:
                self.observer.retried(self.name, label)
            self._sleep(delay)

    def _observe(self, label: str, started: float) -> None:
        """A try that ended without an answer (connection refused, reset, timeout)."""
        if self.observer is not None:
            self.observer.answered(self.name, label, time.monotonic() - started, "retry")

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
        body = read_capped(response, SMALL_BODY_CAP, what, self.name)
        if path == "/oauth2/token" or status == 401:
            detail = oauth_error(status, body)
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

    def close(self) -> None:
        self._http.close()

    @property
    def last_date(self) -> tuple[datetime, float] | None:
        """The latest Date header: (the appliance's time, ``time.monotonic()`` then)."""
        return self._date
