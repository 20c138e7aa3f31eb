"""The simulated appliance: its state (tokens, data, clock, faults) and its server.

Serves what the API guides describe and btic uses (see :mod:`btic.sim.handler`
for each request). Standard library only, one thread per connection, bodies
streamed; TLS with a generated certificate (:mod:`btic.sim.tls`).
"""

from __future__ import annotations

import secrets
import ssl
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

from btic.sim.data import (
    Product,
    SimDataset,
    SimSession,
    content_sha256,
    recording_key,
)
from btic.sim.faults import FaultPlan
from btic.sim.handler import REPORTS, SimHandler, SimServer
from btic.sim.query import select_sessions

MAX_TOKENS = 30


def default_permissions(product: str) -> dict[str, str]:
    if product == "pa":
        return {"perm_backup": "1", "perm_command": "full_access", "perm_reporting": "1"}
    return {
        "perm_backup": "1",
        "perm_command": "full_access",
        "perm_reporting_archive": "0",
        "perm_reporting_license": "0",
        "perm_reporting_presentation": "1",
        "perm_reporting_support": "1",
    }


class TokenStore:
    """OAuth tokens of the one API account: at most 30 live, oldest evicted."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._tokens: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.grants = 0

    def grant(self) -> str:
        token = secrets.token_urlsafe(30)
        with self._lock:
            self.grants += 1
            self._tokens[token] = time.monotonic() + self.ttl
            while len(self._tokens) > MAX_TOKENS:
                self._tokens.popitem(last=False)
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            expires = self._tokens.get(token)
            return expires is not None and expires > time.monotonic()

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()


class FrozenClock:
    """A clock that moves only when told to (:meth:`advance`): an appliance on it
    closes no session between two runs a test compares."""

    def __init__(self, start: float | None = None):
        self.moment = time.time() if start is None else start

    def __call__(self) -> float:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += seconds


class SimulatedAppliance:
    """A simulated RS or PA appliance on a local port.

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with SimulatedAppliance("rs", sessions=20) as sim:
            print(sim.url, sim.client_id, sim.client_secret, sim.ca_path)

    :param port: 0 picks a free port.
    :param tls: serve HTTPS with a generated CA (:attr:`ca_path`).
    :param faults: a :class:`FaultPlan` or its spec string.
    :param token_ttl: seconds a token lives (the appliance's is 3600).
    :param language: the language of "no matching data" answers.
    :param permissions: overrides of the API account's permissions
        (``{"perm_backup": "0"}``).
    :param shell_report_from: how the SupportSession report numbers command
        shell recordings: 1 (default on RS) or 0; PA always numbers from 0.
    :param instance_in_urls: whether recording download URLs carry ``instance=``.
    :param clock: the appliance's clock before the ``clock=`` fault's offset (UNIX
        seconds); a :class:`FrozenClock` for tests that compare two runs.
    """

    def __init__(
        self,
        product: Product = "rs",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
        sessions: int = 40,
        seed: int = 1,
        recording_size: int = 256 * 1024,
        backup_size: int = 512 * 1024,
        presentations: int | None = None,
        live_sessions: int = 3,
        live_interval: int = 30,
        history_seconds: int = 2 * 86400,
        expired_every: int = 0,
        client_id: str | None = None,
        client_secret: str | None = None,
        faults: FaultPlan | str | None = None,
        token_ttl: float = 3600,
        language: str = "en",
        permissions: dict[str, str] | None = None,
        state_dir: Path | None = None,
        shell_report_from: int | None = None,
        instance_in_urls: bool = True,
        clock: Callable[[], float] = time.time,
    ):
        if product not in REPORTS:
            raise ValueError("product must be rs or pa")
        self.product = product
        self.clock = clock
        self.bind_host = host
        self.port = port
        self.tls = tls
        self.seed = seed
        self.client_id = client_id or secrets.token_hex(20)
        self.client_secret = client_secret or secrets.token_urlsafe(33)
        self.faults = faults if isinstance(faults, FaultPlan) else FaultPlan.parse(faults)
        self.tokens = TokenStore(token_ttl)
        self.language = language
        self.permissions = {**default_permissions(product), **(permissions or {})}
        self.stats: Counter[str] = Counter()
        #: files (recordings, backups) being sent now, sent whole, and the most at once
        self.files_in_flight = 0
        self.files_sent = 0
        self.most_files_at_once = 0
        self._files_lock = threading.Lock()
        self._files_moved = threading.Condition(self._files_lock)
        #: files still let through before the next ones are held (None: no hold)
        self._files_before_hold: int | None = None
        #: files waiting at the hold now
        self.files_held = 0
        self.backups_served: list[tuple[int, int, str]] = []
        self._state_dir = state_dir
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self.ca_path: Path | None = None
        self.dataset = SimDataset(
            product=product,
            seed=seed,
            anchor=int(self.now()),
            sessions=sessions,
            live_sessions=live_sessions,
            live_interval=live_interval,
            history_seconds=history_seconds,
            recording_size=recording_size,
            backup_size=backup_size,
            presentations=(sessions // 7 if presentations is None else presentations),
            expired_every=expired_every,
            shell_report_from=1 if shell_report_from is None else shell_report_from,
            instance_in_urls=instance_in_urls,
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> SimulatedAppliance:
        server = SimServer((self.bind_host, self.port), SimHandler)
        server.appliance = self
        if self.tls:
            from btic.sim.tls import make_certificates

            directory = self._state_dir.resolve() if self._state_dir is not None else None
            if directory is None:
                self._tempdir = tempfile.TemporaryDirectory(prefix="btic-sim-")
                directory = Path(self._tempdir.name)
            certificates = make_certificates(directory, self.bind_host)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(certificates.cert_path, certificates.key_path)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            self.ca_path = certificates.ca_path
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="btic-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> SimulatedAppliance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what clients need -------------------------------------------------------

    @property
    def host(self) -> str:
        """``host:port`` as a site's ``host`` setting takes it."""
        return f"{self.bind_host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def site_toml(self, name: str = "sim", secret_ref: str | None = None) -> str:
        """A ready-to-paste ``[sites.NAME]`` section."""
        lines = [
            f"[sites.{name}]",
            f'host = "{self.host}"',
            f'client_id = "{self.client_id}"',
            f'client_secret = "{secret_ref or self.client_secret}"',
            f'product = "{self.product}"',
        ]
        if self.tls:
            lines.append(f'ca_bundle = "{self.ca_path}"')
        else:
            lines.append('scheme = "http"')
        return "\n".join(lines) + "\n"

    def now(self) -> float:
        """The appliance's clock (UNIX seconds), fault offset included."""
        return self.clock() + self.faults.clock_offset

    def recording_sha256(self, lsid: str, kind: str, instance: int | None = None) -> str:
        """What a download of this recording must hash to (``instance`` as the API numbers it)."""
        size = self.dataset.recording_size_of(kind)
        return content_sha256(recording_key(self.seed, lsid, kind, instance), size)

    def file_started(self) -> None:
        """A recording or backup starts going out (after the hold, while there is one)."""
        with self._files_moved:
            if self._files_before_hold is not None and self._files_before_hold <= 0:
                self.files_held += 1
                self._files_moved.notify_all()
                self._files_moved.wait_for(lambda: self._files_before_hold is None)
                self.files_held -= 1
            elif self._files_before_hold is not None:
                self._files_before_hold -= 1
            self.files_in_flight += 1
            self.most_files_at_once = max(self.most_files_at_once, self.files_in_flight)

    def file_ended(self, complete: bool) -> None:
        with self._files_lock:
            self.files_in_flight -= 1
            self.files_sent += complete

    @contextmanager
    def holding_files(self, after: int = 0) -> Iterator[None]:
        """Let ``after`` more recordings or backups go out, then hold the next ones
        before their first byte until the block ends: a moment at which a client is
        certainly in the middle of a run (see :meth:`wait_for_held`)."""
        with self._files_moved:
            self._files_before_hold = after
        try:
            yield
        finally:
            with self._files_moved:
                self._files_before_hold = None
                self._files_moved.notify_all()

    def wait_for_held(self, count: int = 1, timeout: float = 60) -> bool:
        """Wait until ``count`` files wait at the hold; False after ``timeout`` seconds."""
        with self._files_moved:
            return self._files_moved.wait_for(lambda: self.files_held >= count, timeout)

    def revoke_tokens(self) -> None:
        self.tokens.revoke_all()

    # -- request handling ------------------------------------------------------------

    def select_sessions(self, report: str, params: dict[str, str], kind: str) -> list[SimSession]:
        """Sessions matching the guide's parameters now.

        :raises QueryError: for parameters the appliance refuses.
        """
        return select_sessions(self.dataset.all(), report, params, kind, self.now())
