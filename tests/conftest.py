"""Shared test helpers: the installed ``btic`` command and throwaway plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

import pytest

BTIC = str(Path(sys.executable).with_name("btic"))


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_btic(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    pythonpath: list[Path] = (),
    timeout: float = 120,
) -> Result:
    """Run the installed ``btic`` console script as a user would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    if pythonpath:
        full_env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    full_env.update(env or {})
    proc = subprocess.run(
        [BTIC, *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


class DistributionFactory:
    """Writes throwaway distributions (dist-info + module) into one directory.

    importlib.metadata finds them on sys.path exactly as it finds installed
    packages, so discovery is tested for real.
    """

    def __init__(self, root: Path):
        self.root = root

    def make(
        self, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]
    ) -> Path:
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = ["[btic]"] + [f"{name} = {target}" for name, target in entry_points.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        return self.root


@pytest.fixture
def distributions(tmp_path: Path) -> DistributionFactory:
    return DistributionFactory(tmp_path / "site")


VALID_PLUGIN = """
import btic
from pydantic import BaseModel, ConfigDict

class Destination:
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        label: str = "x"

    @btic.hookimpl
    def on_session_xml(self, session, xml, ctx):
        return btic.Delivery(location="somewhere")
"""


# -- the simulated appliance and clients of it ----------------------------------

from btic.appliance.client import ApplianceClient, SiteConnection  # noqa: E402
from btic.secrets import Secret  # noqa: E402
from btic.sim import FrozenClock, SimulatedAppliance  # noqa: E402


def connect(
    sim: SimulatedAppliance,
    *,
    name: str = "sim",
    secret: str | None = None,
    ca: bool = True,
    keep_alive: bool = False,
    product: str = "auto",
    **kwargs,
) -> ApplianceClient:
    """A client of ``sim`` that verifies TLS with the simulator's CA; never sleeps."""
    site = SiteConnection(
        host=sim.host,
        client_id=sim.client_id,
        client_secret=Secret(secret or sim.client_secret),
        scheme=sim.scheme,
        ca_bundle=sim.ca_path if ca else None,
        keep_alive=keep_alive,
        product=product,
        timeout=10,
    )
    kwargs.setdefault("sleep", lambda seconds: None)
    return ApplianceClient(name, site, **kwargs)


# The shared appliances run on a frozen clock: their sessions in progress never
# close between two runs a test compares, however slowly the machine runs.
@pytest.fixture(scope="module")
def rs_sim():
    with SimulatedAppliance(
        "rs", sessions=40, seed=7, recording_size=300_000, clock=FrozenClock()
    ) as sim:
        yield sim


@pytest.fixture(scope="module")
def pa_sim():
    with SimulatedAppliance(
        "pa", sessions=20, seed=8, recording_size=200_000, clock=FrozenClock()
    ) as sim:
        yield sim


# -- a real PostgreSQL server, started for the session when the machine has one ----------

import shutil  # noqa: E402
import tempfile  # noqa: E402
import time as _time  # noqa: E402

from btic.testing.servers import free_port, new_postgres_database  # noqa: E402


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL server (.ci/run installs Debian's postgresql)."""
    from btic.testing.servers import PostgresServer, ServerUnavailable

    try:
        with PostgresServer.started() as server:
            yield server
    except ServerUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def postgres_url(postgres_server):
    """A PostgreSQL URL on the private server."""
    return postgres_server.url


@pytest.fixture
def fresh_postgres(postgres_url):
    """An empty database on the session's PostgreSQL server."""
    return new_postgres_database(postgres_url)


@pytest.fixture(scope="session")
def mariadb_odbc():
    """A private MariaDB server, reached through unixODBC and MariaDB's ODBC driver:
    a function that makes a new database and returns its ``mysql+pyodbc`` URL."""
    install, server = (
        shutil.which("mariadb-install-db"),
        shutil.which("mariadbd", path="/usr/sbin:/usr/bin"),
    )
    if not install or not server:
        pytest.skip("MariaDB is not installed (.ci/run installs Debian's mariadb-server)")
    try:
        import pyodbc
    except ImportError:
        pytest.skip("pyodbc is not installed (pip install -r requirements-dev.txt)")
    if "MariaDB Unicode" not in pyodbc.drivers():
        pytest.skip("MariaDB's ODBC driver is not registered (Debian package odbc-mariadb)")
    root = Path(tempfile.mkdtemp(prefix="btic-mariadb-"))
    user = ["--user=mysql"] if os.geteuid() == 0 else []
    if user:
        shutil.chown(root, "mysql")
    init = subprocess.run(
        [
            install,
            *user,
            f"--datadir={root / 'data'}",
            "--skip-test-db",
            "--auth-root-authentication-method=socket",
        ],
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        pytest.skip(f"mariadb-install-db failed: {init.stderr.strip()[:200]}")
    port = free_port()
    socket_path = root / "sock"
    process = subprocess.Popen(
        [
            server,
            "--no-defaults",
            *user,
            f"--datadir={root / 'data'}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={socket_path}",
            f"--log-error={root / 'error.log'}",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = shutil.which("mariadb") or "mariadb"

    def admin(sql: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [client, f"--socket={socket_path}", "-uroot", "-e", sql], capture_output=True, text=True
        )

    try:
        for _ in range(100):
            if admin("SELECT 1").returncode == 0:
                break
            _time.sleep(0.1)
        else:
            pytest.skip("MariaDB did not start")
        created = admin(
            "CREATE USER 'btic'@'127.0.0.1' IDENTIFIED BY 'btic-pw'; "
            "GRANT ALL ON *.* TO 'btic'@'127.0.0.1';"
        )
        assert created.returncode == 0, created.stderr

        def new_database() -> str:
            name = f"btic_{_time.time_ns() % 10**12}"
            made = admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
            assert made.returncode == 0, made.stderr
            odbc = (
                "DRIVER={MariaDB Unicode};SERVER=127.0.0.1;"
                f"PORT={port};DATABASE={name};UID=btic;PWD=btic-pw;CHARSET=utf8mb4"
            )
            return "mysql+pyodbc:///?odbc_connect=" + quote_plus(odbc)

        yield new_database
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` at ``where`` (root only), unmounted afterwards."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)


@pytest.fixture(scope="session")
def redis_server():
    """A private Redis broker for the Celery tests (scripts/setup installs redis-server)."""
    from btic.testing.servers import RedisServer, ServerUnavailable

    try:
        with RedisServer.started() as server:
            yield server
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
