"""Overlapping runs on one state database: leases (a schedule's, and each transfer's) keep
them off each other's items."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import BTIC, new_postgres_database
from transfer_helpers import check_archive, expected_files, write_config

from btic.sim import SimulatedAppliance

PAIRS = 20
DATA = ["session", "recording", "command_shell_recording"]


@pytest.fixture(scope="module")
def sim():
    with SimulatedAppliance(
        "rs", sessions=14, seed=61, recording_size=60_000, live_sessions=0
    ) as appliance:
        yield appliance


def _sync(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BTIC, "sync", "--all", "-v", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _overlapping_pairs(sim: SimulatedAppliance, tmp_path: Path, state_url) -> None:
    skipped = 0
    for pair in range(PAIRS):
        root = tmp_path / f"pair{pair:02d}"
        root.mkdir()
        config = write_config(root, sim, data=DATA)
        config.write_text(f'[state]\nurl = "{state_url(root)}"\n' + config.read_text())
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(_sync, [config, config])
        for result in (first, second):
            assert result.returncode == 0, result.stdout + result.stderr
            assert "Traceback" not in result.stdout + result.stderr
        # Kept apart by the schedule's lease, or (a run that took it just after the
        # other let go) by the transfers' leases.
        skipped += sum(
            "being run by another process" in r.stderr
            or "being transferred by another run" in r.stderr
            for r in (first, second)
        )
        # everything arrived, once: no numbered copies
        check_archive(root / "archive", expected_files(sim, data=DATA))
    assert skipped, "no pair overlapped: the test proves nothing"


def test_overlapping_syncs_on_sqlite_deliver_everything_once(sim, tmp_path):
    _overlapping_pairs(sim, tmp_path, lambda root: f"sqlite:///{root / 'btic-state.db'}")


def test_overlapping_syncs_on_postgresql_deliver_everything_once(sim, tmp_path, postgres_url):
    _overlapping_pairs(sim, tmp_path, lambda _root: new_postgres_database(postgres_url))
