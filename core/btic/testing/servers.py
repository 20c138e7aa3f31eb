"""Private database and broker servers for tests and benchmarks: a PostgreSQL and
a redis-server from the machine's packages, on free loopback ports, in
temporary directories, gone when the context ends.

    with PostgresServer.started() as postgres, RedisServer.started() as redis:
        state_url = postgres.new_database()
        broker_url = redis.url

:class:`ServerUnavailable` says why one cannot run here (not installed, root
without ``runuser``); tests turn it into a skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ServerUnavailable(Exception):
    """The server cannot be started on this machine; the message says why."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PostgresServer:
    """A PostgreSQL server of its own (fsync off: for tests, not for keeping data).

    :ivar url: the ``postgres`` database, as a SQLAlchemy URL (psycopg 3).
    """

    def __init__(self, root: Path, port: int, run_as: list[str], pg_ctl: str):
        self.root = root
        self.port = port
        self._run_as = run_as
        self._pg_ctl = pg_ctl
        self.url = f"postgresql+psycopg://btic@127.0.0.1:{port}/postgres"

    @classmethod
    @contextmanager
    def started(cls) -> Iterator[PostgresServer]:
        """Start one; stop it and remove its files at the end.

        :raises ServerUnavailable: when PostgreSQL or psycopg is missing.
        """
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise ServerUnavailable("PostgreSQL is not installed (scripts/setup installs it)")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ServerUnavailable("psycopg is not installed (requirements-dev.txt)") from None
        root = Path(tempfile.mkdtemp(prefix="btic-pg-"))
        run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            if shutil.which("runuser") is None:
                raise ServerUnavailable("running as root without runuser")
            run_as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
            root.chmod(0o755)
        server = cls(root, free_port(), run_as, pg_ctl)
        data = root / "data"
        try:
            init = subprocess.run(
                [*run_as, initdb, "-D", str(data), "-U", "btic", "--auth=trust", "-E", "UTF8"],
                capture_output=True,
                text=True,
            )
            if init.returncode != 0:
                raise ServerUnavailable(f"initdb failed: {init.stderr.strip()[:200]}")
            options = (
                f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=300"
            )
            log = str(root / "log")
            start = subprocess.run(
                [*run_as, pg_ctl, "-D", str(data), "-l", log, "-w", "-o", options, "start"],
                capture_output=True,
                text=True,
            )
            if start.returncode != 0:
                raise ServerUnavailable(f"PostgreSQL did not start: {start.stderr.strip()[:200]}")
            yield server
        finally:
            subprocess.run(
                [*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
            )
            shutil.rmtree(root, ignore_errors=True)

    def new_database(self) -> str:
        """The URL of a new, empty database on this server."""
        return new_postgres_database(self.url)


def new_postgres_database(url: str) -> str:
    """The URL of a new, empty database on the server of ``url``."""
    import psycopg

    name = f"btic_{time.time_ns() % 10**12}_{os.getpid()}"
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name


class RedisServer:
    """A redis-server of its own, without persistence: a restart loses what was
    queued (the harshest case of a broker outage)."""

    def __init__(self, root: Path, executable: str):
        self.root = root
        self.port = free_port()
        self._executable = executable
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    @contextmanager
    def started(cls) -> Iterator[RedisServer]:
        """Start one; stop it and remove its files at the end.

        :raises ServerUnavailable: when redis-server is not installed.
        """
        executable = shutil.which("redis-server")
        if executable is None:
            raise ServerUnavailable("redis-server is not installed (scripts/setup installs it)")
        server = cls(Path(tempfile.mkdtemp(prefix="btic-redis-")), executable)
        try:
            server.start()
            yield server
        finally:
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again, on the same port)."""
        self.process = subprocess.Popen(
            [
                *(self._executable, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.root)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self._command(b"PING").startswith(b"+PONG"):
                    return
            except OSError:
                time.sleep(0.1)
        raise ServerUnavailable("redis-server did not start")

    def stop(self) -> None:
        """Kill it: whatever it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)

    def flush(self) -> None:
        """Forget every queued message."""
        self._command(b"FLUSHALL")

    def _command(self, command: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            connection.sendall(command + b"\r\n")
            return connection.recv(64)
