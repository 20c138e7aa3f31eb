"""The release: ``scripts/release`` builds the four distributions, they pass
``twine check`` and carry the licence, and installed from the wheels alone into
a clean virtual environment, far from the source tree, btic runs its demo,
lists its plugins and the plugins pass the conformance kit."""

from __future__ import annotations

import email.parser
import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = ("btic", "btic_filesystem", "btic_s3", "btic_sqlserver")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [str(ROOT / "scripts" / "release"), "--out", str(out), "--no-isolation", "--no-lock"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _version() -> str:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_every_distribution_is_built_checked_and_licensed(artifacts):
    version = _version()
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence
    for name in DISTRIBUTIONS:
        wheel = artifacts / f"{name}-{version}-py3-none-any.whl"
        assert wheel.exists() and (artifacts / f"{name}-{version}.tar.gz").exists()
        with zipfile.ZipFile(wheel) as archive:
            licences = [n for n in archive.namelist() if n.endswith("licenses/LICENSE")]
            assert len(licences) == 1, name
            assert archive.read(licences[0]).decode() == licence
        metadata = _metadata(wheel)
        assert metadata["Version"] == version
        assert metadata["License-Expression"] == "Apache-2.0"
        if name != "btic":
            requires = metadata.get_all("Requires-Dist") or []
            assert any(r.replace(" ", "") in ("btic<2,>=1.0", "btic>=1.0,<2") for r in requires)


def test_the_wheels_alone_install_run_the_demo_and_pass_the_kit(artifacts, tmp_path):
    version = _version()
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    wheels = {name: artifacts / f"{name}-{version}-py3-none-any.whl" for name in DISTRIBUTIONS}
    # Away from the source tree: no PYTHONPATH, another working directory.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), capture_output=True, text=True, env=env, cwd=elsewhere, timeout=timeout
        )

    install = run(
        str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        f"{wheels['btic']}[sim,testing]", str(wheels["btic_filesystem"]),
        str(wheels["btic_s3"]), str(wheels["btic_sqlserver"]),
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    where = run(str(python), "-c", "import btic, btic_filesystem; print(btic.__file__)")
    assert str(environment) in where.stdout and str(ROOT) not in where.stdout

    btic = str(environment / "bin" / "btic")
    shown = run(btic, "--version")
    assert shown.stdout.splitlines()[0] == f"btic {version}"
    assert f"  plugin filesystem: btic-filesystem {version}" in shown.stdout

    plugins = run(btic, "plugins")
    assert plugins.returncode == 0, plugins.stderr
    listed = {p["name"]: p for p in json.loads(plugins.stdout)}
    assert set(listed) == {"filesystem", "s3", "sqlserver"}
    assert all(not p.get("error") for p in listed.values()), listed

    demo = run(btic, "demo", "--directory", str(tmp_path / "demo"))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert any((tmp_path / "demo" / "archive").rglob("*.xml"))

    # The conformance kit, from the installed btic.testing, against the installed
    # plugins: the file system's suite as the repository runs it, and the SQL
    # plugin's on SQLite.
    kit = tmp_path / "kit"
    kit.mkdir()
    source = ROOT / "tests" / "plugins"
    (kit / "test_filesystem_kit.py").write_text(
        (source / "filesystem" / "test_conformance.py").read_text()
    )
    sql = (source / "sqlserver" / "test_sql_conformance.py").read_text()
    sql = sql.replace(
        "sys.path.insert(0, str(Path(__file__).resolve().parents[2]))\n"
        "from conftest import new_postgres_database\n",
        "",
    )
    assert "conftest" not in sql
    (kit / "test_sql_kit.py").write_text(sql)
    tested = run(
        str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(kit), "-k",
        "not postgresql", "--basetemp", str(tmp_path / "kit-tmp"),
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert " passed" in tested.stdout and " failed" not in tested.stdout
