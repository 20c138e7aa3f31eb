"""SIGKILL at random points of a sync; after a rerun the archive is exactly right."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from conftest import BTIC, run_btic
from transfer_helpers import ALL_TYPES, actual_files, expected_files, write_config

from btic.sim import SimulatedAppliance

TRIALS = 30


def _wait_for_deliveries(
    log: Path, count: int, proc: subprocess.Popen[bytes], limit: float
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if log.read_text().count("event='delivered'") >= count:
            return
        time.sleep(0.005)


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path):
    rng = random.Random(20261122)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    with SimulatedAppliance(
        "rs", sessions=12, seed=31, recording_size=1_500_000, live_sessions=0, faults="latency=0.01"
    ) as sim:
        reference = tmp_path / "reference"
        reference.mkdir()
        started = time.monotonic()
        # settle_delay 1s: every session (all ended before the simulator started) is in every run's
        # window, however long the trials take.
        settle = 'settle_delay = "1s"\n'
        clean = run_btic(
            "sync",
            "--config",
            str(write_config(reference, sim, data=[*ALL_TYPES, "backup"], extra_site=settle)),
        )
        full_run = time.monotonic() - started
        assert clean.returncode == 0, clean.output
        expected = {
            n: h for n, h in actual_files(reference / "archive").items() if not n.endswith(".nsb")
        }
        assert len(expected) > 20
        started = time.monotonic()
        run_btic("--version")
        startup = time.monotonic() - started

        delivered_at_kill = []
        # Before the first delivery and after the last, and anywhere between.
        targets = [0, len(expected)] + [rng.randrange(len(expected) + 1) for _ in range(TRIALS - 2)]
        for trial, target in enumerate(targets):
            directory = tmp_path / f"trial{trial:02d}"
            directory.mkdir()
            config = write_config(directory, sim, data=[*ALL_TYPES, "backup"], extra_site=settle)
            log = (directory / "killed.log").open("w")
            proc = subprocess.Popen(
                [BTIC, "sync", "--all", "-v", "--config", str(config)],
                stdout=log,
                stderr=log,
                env=env,
            )
            # Kill after a chosen number of deliveries (0: during start-up or the first one)
            # plus a random moment, so the kills spread over the run however fast it goes.
            if target == 0:
                time.sleep(rng.uniform(0.05, startup * 0.9))
            else:
                _wait_for_deliveries(directory / "killed.log", target, proc, full_run * 4)
                time.sleep(rng.uniform(0, 0.05))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            log.close()
            delivered_at_kill.append(
                (directory / "killed.log").read_text().count("event='delivered'")
            )

            rerun = run_btic("sync", "--all", "--config", str(config))
            assert rerun.returncode == 0, f"trial {trial}: {rerun.output}"
            spools = directory / "btic-spool"  # beside the state database
            assert not list(spools.glob(f"{proc.pid}-*")), (
                f"trial {trial}: the killed run's spool was left"
            )
            actual = actual_files(directory / "archive")
            backups = {n: h for n, h in actual.items() if n.endswith(".nsb")}
            others = {n: h for n, h in actual.items() if not n.endswith(".nsb")}
            assert others == expected, (
                f"trial {trial} (killed after {delivered_at_kill[-1]} deliveries): "
                f"missing {sorted(set(expected) - set(others))[:3]}, extra {sorted(set(others) - set(expected))[:3]}"
            )
            served = {sha for _, _, sha in sim.backups_served}
            assert backups and set(backups.values()) <= served, f"trial {trial}: a partial backup"
            assert not list(Path(directory / "archive").rglob(".*")), (
                f"trial {trial}: temporary files left"
            )

    # the kills landed all over the run: before the first delivery, in the middle and near the end
    assert min(delivered_at_kill) == 0
    assert max(delivered_at_kill) > len(expected) // 2
    assert len(set(delivered_at_kill)) >= 8, delivered_at_kill


def test_sigterm_and_sigint_stop_after_the_item_in_hand(tmp_path):
    import sqlite3

    env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    with SimulatedAppliance(
        "rs", sessions=10, seed=37, recording_size=200_000, live_sessions=0, faults="latency=0.05"
    ) as sim:
        for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
            directory = tmp_path / signum.name
            directory.mkdir()
            config = write_config(directory, sim, data=["session", "recording"])
            log = directory / "run.log"
            # The signal comes while btic surely has work left: a recording waits at
            # the appliance's hold, and is let go only once the signal is sent.
            with log.open("w") as out, sim.holding_files(after=1):
                proc = subprocess.Popen(
                    [BTIC, "sync", "--all", "-v", "--config", str(config)],
                    stdout=out,
                    stderr=out,
                    env=env,
                )
                assert sim.wait_for_held(1, timeout=60), log.read_text()
                proc.send_signal(signum)
            assert proc.wait(timeout=60) == code, log.read_text()
            output = log.read_text()
            assert f"interrupted by {signum.name} after the items in hand" in output
            assert "destination  type" in output  # the partial summary
            assert "Traceback" not in output
            with sqlite3.connect(directory / "btic-state.db") as db:
                assert db.execute("select status from btic_runs").fetchall() == [("interrupted",)]
            rerun = run_btic("sync", "--all", "--config", str(config))
            assert rerun.returncode == 0, rerun.output
            expected = expected_files(sim, data=["session", "recording"])
            assert actual_files(directory / "archive").keys() == expected.keys()


def test_sigkill_inside_a_group_commit_redelivers_without_a_second_copy(tmp_path):
    """Deliveries wait up to a second (or 500 items) for their ledger commit. Kill btic
    while files are on disk that the ledger does not have yet: the next run delivers
    those again, and the destination recognises them (no `.1` copies, nothing lost)."""
    import sqlite3

    env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    with SimulatedAppliance(
        "rs", sessions=300, seed=79, live_sessions=0, presentations=0, tls=False
    ) as sim:
        config = write_config(tmp_path, sim, data=["session"])
        archive = tmp_path / "archive"
        database = tmp_path / "btic-state.db"

        def recorded() -> int:
            try:
                with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
                    query = "select count(*) from btic_deliveries where status = 'delivered'"
                    return db.execute(query).fetchone()[0]
            except sqlite3.Error:
                return 0

        proc = subprocess.Popen(
            [BTIC, "sync", "--all", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        files = recorded_then = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            files = len(list(archive.glob("*.xml"))) if archive.exists() else 0
            if files >= 40:
                recorded_then = recorded()
                if recorded_then < files:
                    proc.kill()
                    break
            time.sleep(0.01)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the kill must land inside the run"
        assert recorded_then < files  # files on disk the ledger did not have
        rerun = run_btic("sync", "--all", "--config", str(config))
        assert rerun.returncode == 0, rerun.output
        expected = expected_files(sim, data=["session"])
    assert actual_files(archive).keys() == expected.keys()  # every session once, no .1
    assert recorded() == len(expected)
