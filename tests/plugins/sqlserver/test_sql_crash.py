"""SIGKILL during transfers into PostgreSQL: after a rerun, every table holds exactly
what one clean run writes, and the ledger agrees with the rows."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import BTIC, new_postgres_database, run_btic
from test_sqlserver import counts, sql_config

from btic.sim import SimulatedAppliance

TRIALS = 10


def test_sigkill_at_random_moments_leaves_every_table_exact_after_a_rerun(tmp_path, postgres_url):
    rng = random.Random(20261123)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    settle = 'settle_delay = "1s"\n'
    with SimulatedAppliance(
        "rs", sessions=150, seed=41, live_sessions=0, faults="latency=0.08"
    ) as sim:
        reference = tmp_path / "reference"
        reference.mkdir()
        url = new_postgres_database(postgres_url)
        config = sql_config(reference, sim, url, site=settle)
        started = time.monotonic()
        clean = run_btic("sync", "--all", "--config", str(config))
        full_run = time.monotonic() - started
        assert clean.returncode == 0, clean.output
        expected = counts(url)
        assert expected["session"] == len(list((reference / "files").glob("*.xml"))) > 100

        moments = []
        delivered = []  # of the reports, by the killed run
        for trial in range(TRIALS):
            directory = tmp_path / f"trial{trial:02d}"
            directory.mkdir()
            url = new_postgres_database(postgres_url)
            config = sql_config(directory, sim, url, site=settle)
            moment = rng.uniform(0, full_run * 1.1)
            moments.append(moment)
            with (directory / "killed.log").open("w") as log:
                proc = subprocess.Popen(
                    [BTIC, "sync", "--all", "-v", "--config", str(config)],
                    stdout=log,
                    stderr=log,
                    env=env,
                )
                time.sleep(moment)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            delivered.append((directory / "killed.log").read_text().count("destination='reports'"))
            rerun = run_btic("sync", "--all", "--config", str(config))
            assert rerun.returncode == 0, f"trial {trial}: {rerun.output}"
            assert counts(url) == expected, f"trial {trial}, killed at {moment:.2f}s"
            verified = run_btic("verify", "--config", str(config), "--dest", "reports")
            assert verified.returncode == 0, f"trial {trial}: {verified.output}"
    # Kills before any report was recorded, and after some batches were.
    assert min(delivered) == 0 and max(delivered) > 0, (full_run, moments, delivered)
