"""`btic run`, the daemon: in-process with a simulated clock (tokens, health), and as
real processes (two daemons on one PostgreSQL state database, SIGKILL, SIGTERM, reload,
metrics scraped over HTTP)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import BTIC, new_postgres_database
from transfer_helpers import check_archive, expected_files, wait_for, write_config

from btic import logs
from btic.config import load_config
from btic.daemon import Daemon
from btic.plugins import PluginManager
from btic.sim import SimulatedAppliance
from btic.testing.servers import free_port


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def every_minute(config: Path) -> Path:
    config.write_text(config.read_text().replace('every = "15m"', 'every = "1m"'))
    return config


def test_a_daemon_keeps_one_token_for_ten_minutes_of_one_minute_runs(tmp_path):
    """Ten simulated minutes of a one-minute schedule: a run per minute, one token
    (an API account keeps 30, and the 31st logs out the oldest holder)."""
    with SimulatedAppliance("rs", sessions=4, seed=41, live_sessions=0) as sim:
        path = every_minute(write_config(tmp_path, sim, data=["session"]))
        plugins = PluginManager.from_environment().discover()
        start = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
        clock = Clock(start)

        def wait(seconds: float) -> None:
            daemon.join_runs()
            clock.now += timedelta(seconds=seconds)
            if clock.now >= start + timedelta(minutes=10):
                daemon.request_stop()

        daemon = Daemon(
            lambda: load_config(path, plugins),
            plugins,
            config_path=path,
            log_for=logs.for_config,
            clock=clock,
            wait=wait,
        )
        stopped = daemon.run()
        assert stopped.abandoned == () and stopped.failed == ()
        assert sim.stats["token"] == 1
        with sqlite3.connect(tmp_path / "btic-state.db") as db:
            runs = db.execute("select status from btic_runs where kind = 'sync'").fetchall()
            (slot,) = db.execute("select last_slot from btic_schedules").fetchone()
        # 12:00 .. 12:09: ten slots, each run once
        assert runs == [("ok",)] * 10
        assert slot.startswith("2026-11-23 12:09:00")
        assert daemon.overdue() == []
        clock.now += timedelta(minutes=7)
        assert daemon.overdue() == ["often"]  # nothing ran for 7 minutes of a 1m schedule


def test_a_change_of_the_file_is_picked_up_and_a_broken_one_keeps_the_old(tmp_path):
    with SimulatedAppliance("rs", sessions=4, seed=43, live_sessions=0) as sim:
        path = every_minute(write_config(tmp_path, sim, data=["session"]))
        plugins = PluginManager.from_environment().discover()
        clock = Clock(datetime(2026, 11, 23, 12, 0, 30, tzinfo=timezone.utc))
        edits = [
            lambda text: text.replace('every = "1m"', 'every = "fortnightly"'),
            lambda text: (
                text.replace('every = "fortnightly"', 'every = "1m"')
                + f'[destinations.second]\nplugin = "filesystem"\ndirectory = "{tmp_path / "second"}"\n'
                + '[schedules.more]\nevery = "1m"\n[[schedules.more.transfers]]\nsite = "sim"\n'
                + 'destinations = ["second"]\ndata = ["session"]\n'
            ),
        ]
        seen: list[list[str]] = []

        def wait(seconds: float) -> None:
            daemon.join_runs()
            seen.append(sorted(daemon.scheduler.enabled()))
            if not edits:
                daemon.request_stop()
                return
            path.write_text(edits.pop(0)(path.read_text()))
            os.utime(path, ns=(time.time_ns(), time.time_ns() + len(edits)))
            clock.now += timedelta(seconds=seconds)

        daemon = Daemon(
            lambda: load_config(path, plugins),
            plugins,
            config_path=path,
            log_for=logs.for_config,
            clock=clock,
            wait=wait,
        )
        daemon.run()
    # the broken edit left the old configuration running; the good one added a schedule
    assert seen == [["often"], ["often"], ["more", "often"]]
    assert len(list((tmp_path / "second").glob("*.xml"))) == 4


def _start(config: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [BTIC, "run", "--config", str(config), *args], stdout=out, stderr=out, env=env
        )


def test_sigterm_stops_the_daemon_within_the_bound_and_the_next_run_finishes(tmp_path):
    with SimulatedAppliance(
        "rs", sessions=10, seed=47, recording_size=200_000, live_sessions=0, faults="latency=0.05"
    ) as sim:
        config = write_config(tmp_path, sim, data=["session", "recording"])
        log = tmp_path / "run.log"
        proc = _start(config, log, "--stop-timeout", "20")
        archive = tmp_path / "archive"
        wait_for(lambda: len(list(archive.glob("*.flv"))) >= 2, 60, "the first recordings", [proc])
        proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        assert proc.wait(timeout=40) == 0, log.read_text()
        assert time.monotonic() - stopped_at < 25
        output = log.read_text()
        assert "btic run stopped" in output and "Traceback" not in output
        rerun = subprocess.run(
            [BTIC, "sync", "--all", "--config", str(config)], capture_output=True, text=True
        )
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        expected = expected_files(sim, data=["session", "recording"])
        check_archive(archive, expected)  # nothing lost, no second copy, no partial


def test_sighup_reloads_and_a_broken_configuration_keeps_the_old_one(tmp_path):
    with SimulatedAppliance("rs", sessions=3, seed=53, live_sessions=0) as sim:
        config = every_minute(write_config(tmp_path, sim, data=["session"]))
        log = tmp_path / "run.log"
        proc = _start(config, log)
        try:
            wait_for(lambda: "schedule finished" in log.read_text(), 60, "the first run", [proc])
            good = config.read_text()
            config.write_text(good.replace("[schedules.often]", "[schedules.often]\nevry = 1"))
            proc.send_signal(signal.SIGHUP)
            wait_for(
                lambda: "configuration not reloaded" in log.read_text(), 30, "the refusal", [proc]
            )
            assert "schedules.often.evry" in log.read_text()
            config.write_text(
                good
                + f'[destinations.second]\nplugin = "filesystem"\ndirectory = "{tmp_path / "b"}"\n'
                + '[schedules.more]\nevery = "1m"\n[[schedules.more.transfers]]\nsite = "sim"\n'
                + 'destinations = ["second"]\ndata = ["session"]\n'
            )
            proc.send_signal(signal.SIGHUP)
            wait_for(
                lambda: len(list((tmp_path / "b").glob("*.xml"))) == 3,
                60,
                "the new schedule's run",
                [proc],
            )
            assert "configuration reloaded" in log.read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()


def _metrics(port: int) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_are_scraped_during_a_run_and_match_the_ledger(tmp_path):
    pytest.importorskip("prometheus_client")
    with SimulatedAppliance("rs", sessions=5, seed=59, live_sessions=0) as sim:
        config = write_config(tmp_path, sim, data=["session", "recording"])
        port = free_port()
        log = tmp_path / "run.log"
        proc = _start(config, log, "--metrics-port", str(port))
        try:
            wait_for(lambda: "schedule finished" in log.read_text(), 60, "the first run", [proc])
            samples = _metrics(port)
            health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
            assert health.status == 200 and json.loads(health.read()) == {
                "ok": True,
                "overdue": [],
            }
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()
    with sqlite3.connect(tmp_path / "btic-state.db") as db:
        ledger = dict(
            db.execute(
                "select data_type, count(*) from btic_deliveries where status = 'delivered' "
                "group by data_type"
            ).fetchall()
        )
        delivered_bytes = db.execute(
            "select sum(size) from btic_deliveries where status = 'delivered'"
        ).fetchone()[0]
    counted = {
        dict(labels)["data_type"]: value
        for (name, labels), value in samples.items()
        if name == "btic_items_total" and dict(labels)["status"] == "delivered"
    }
    assert counted == ledger and set(ledger) == {"session", "recording"}
    assert delivered_bytes == sum(
        value for (name, _), value in samples.items() if name == "btic_delivered_bytes_total"
    )
    assert samples[("btic_appliance_token_grants_total", (("site", "sim"),))] == 1
    assert samples[("btic_schedule_runs_total", (("schedule", "often"), ("status", "ok")))] == 1
    assert samples[("btic_schedule_last_success_timestamp_seconds", (("schedule", "often"),))] > 0
    assert any(name == "btic_appliance_call_duration_seconds_count" for name, _ in samples), (
        "appliance calls are timed"
    )


def test_two_daemons_on_postgresql_run_each_slot_once_and_one_takes_over_a_killed_one(
    tmp_path, postgres_url
):
    """Two `btic run` on one PostgreSQL state database: one of them runs the slot;
    SIGKILL it mid-run and the other takes the schedule over and finishes the job."""
    state = new_postgres_database(postgres_url)
    with SimulatedAppliance(
        "rs", sessions=12, seed=61, recording_size=150_000, live_sessions=0, faults="latency=0.1"
    ) as sim:
        config = write_config(tmp_path, sim, data=["session", "recording"])
        config.write_text(
            f'[state]\nurl = "{state}"\n'
            + config.read_text().replace('every = "15m"', 'every = "1d"\nat = "00:00"')
        )
        logs_ = [tmp_path / "a.log", tmp_path / "b.log"]
        procs = [_start(config, log) for log in logs_]
        archive = tmp_path / "archive"
        try:
            wait_for(lambda: len(list(archive.glob("*.flv"))) >= 2, 90, "deliveries", procs)
            started = [log.read_text().count("schedule started") for log in logs_]
            assert sorted(started) == [0, 1], "exactly one daemon runs the slot"
            holder = procs[started.index(1)]
            other = procs[started.index(0)]
            holder.kill()
            holder.wait(timeout=30)
            other_log = logs_[started.index(0)]
            wait_for(
                lambda: "schedule finished" in other_log.read_text(), 150, "the take-over", [other]
            )
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=60)
        expected = expected_files(sim, data=["session", "recording"])
        check_archive(archive, expected)  # everything once, nothing partial
    import sqlalchemy

    engine = sqlalchemy.create_engine(state)
    with engine.connect() as connection:
        statuses = sorted(
            row[0] for row in connection.execute(sqlalchemy.text("select status from btic_runs"))
        )
        schedule = connection.execute(
            sqlalchemy.text("select status from btic_schedules where name = 'often'")
        ).all()
    engine.dispose()
    # the killed daemon's run (never finished) and the survivor's, which did the slot
    assert statuses in (["ok", "running"], ["interrupted", "ok"])
    assert schedule == [("ok",)]


FRAGILE_PLUGIN = """
import pathlib
import btic
from pydantic import BaseModel, ConfigDict

class Fragile:
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        directory: str

    @btic.hookimpl
    def on_configure(self, destination, options, app):
        self.directory = pathlib.Path(options.directory)
        if (self.directory / "broken").exists():
            raise RuntimeError("a bug in the plugin's set-up")

    @btic.hookimpl
    def on_session_xml(self, session, xml, ctx):
        (self.directory / f"{session.lsid}.xml").write_bytes(xml)
        return btic.Delivery(location=session.lsid)
"""


def test_btics_own_failure_leaves_the_slot_owed(tmp_path, distributions, monkeypatch):
    """The guide's last-run rule: a run where btic itself failed does not count, so the
    daemon runs the slot again (an unreachable appliance does count: test_schedule)."""
    import sys

    site_packages = distributions.make(
        "btic-fragile",
        "1.0",
        {"fragile": "fragile_plugin:Fragile"},
        {"fragile_plugin": FRAGILE_PLUGIN},
    )
    monkeypatch.syspath_prepend(str(site_packages))
    sys.modules.pop("fragile_plugin", None)
    box = tmp_path / "box"
    box.mkdir()
    (box / "broken").touch()
    with SimulatedAppliance("rs", sessions=3, seed=67, live_sessions=0) as sim:
        path = write_config(
            tmp_path,
            sim,
            data=["session"],
            destinations=f'[destinations.box]\nplugin = "fragile"\ndirectory = "{box}"\n',
            dest_names=("box",),
        )
        path.write_text(path.read_text().replace('every = "15m"', 'every = "1d"\nat = "12:00"'))
        plugins = PluginManager.from_environment().discover()
        clock = Clock(datetime(2026, 11, 23, 12, 0, 10, tzinfo=timezone.utc))
        looks: list[tuple[int, int]] = []

        def wait(seconds: float) -> None:
            daemon.join_runs()
            with sqlite3.connect(tmp_path / "btic-state.db") as db:
                looks.append(
                    (
                        db.execute("select count(*) from btic_schedules").fetchone()[0],
                        db.execute("select count(*) from btic_runs").fetchone()[0],
                    )
                )
            (box / "broken").unlink(missing_ok=True)  # the bug is fixed after one look
            clock.now += timedelta(seconds=seconds)
            if len(looks) == 3:
                daemon.request_stop()

        daemon = Daemon(
            lambda: load_config(path, plugins),
            plugins,
            config_path=path,
            log_for=logs.for_config,
            clock=clock,
            wait=wait,
        )
        stopped = daemon.run()
    assert stopped.failed == ("often",)
    # look 1: btic failed, nothing recorded for the schedule; look 2: it ran again
    # (same day's slot, a minute later); look 3: not due until tomorrow
    assert looks == [(0, 1), (1, 2), (1, 2)]
    with sqlite3.connect(tmp_path / "btic-state.db") as db:
        runs = db.execute("select status, summary from btic_runs order by started_at").fetchall()
    assert runs[0] == ("error", "btic failed: RuntimeError: a bug in the plugin's set-up")
    assert runs[1][0] == "ok"
    assert len(list(box.glob("*.xml"))) == 3


class Started:
    """An observer: which schedule ran, by the simulated clock."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, datetime]] = []

    def schedule_ran(self, outcome) -> None:
        assert outcome.status == "ok", outcome.summary.problems
        self.runs.append((outcome.name, outcome.started_at))


def _live(
    path: Path,
    plugins: PluginManager,
    clock: Clock,
    until: datetime,
    started: Started | None = None,
):
    """One life of a daemon on the simulated clock, until ``until``."""

    def wait(seconds: float) -> None:
        daemon.join_runs()
        clock.now += timedelta(seconds=seconds)
        if clock.now >= until:
            daemon.request_stop()

    daemon = Daemon(
        lambda: load_config(path, plugins),
        plugins,
        config_path=path,
        log_for=lambda config: logs.configure("warning"),
        extra_observers=(started,) if started is not None else (),
        clock=clock,
        wait=wait,
    )
    return daemon.run()


def test_simulated_days_with_restarts_and_an_outage_run_each_slot_once(tmp_path):
    """Three simulated days of a daemon looking every minute (or sooner), stopped and
    started again, with a five-hour outage: every hourly and daily slot runs exactly
    once, except those of the outage, which coalesce into one catch-up run per
    schedule; the daily one at 02:30 Berlin time across the change to summer time."""
    with SimulatedAppliance("rs", sessions=2, seed=71, live_sessions=0) as sim:
        path = write_config(tmp_path, sim, data=["session"])
        path.write_text(
            path.read_text().replace('every = "15m"', 'every = "1h"')
            + '[schedules.daily]\nevery = "1d"\nat = "02:30"\ntime_zone = "Europe/Berlin"\n'
            + '[[schedules.daily.transfers]]\nsite = "sim"\ndestinations = ["archive"]\n'
            + 'data = ["backup"]\n'
        )
        plugins = PluginManager.from_environment().discover()
        start = datetime(2026, 3, 28, 0, 0, 20, tzinfo=timezone.utc)  # DST begins on the 29th
        hours = [0, 7, 20, 34, 39, 40, 55, 72]  # restarts; off from hour 34 to 39
        lives = [(hours[i], hours[i + 1]) for i in range(len(hours) - 1) if hours[i] != 34]
        clock = Clock(start)
        started = Started()
        for first, last in lives:
            clock.now = max(clock.now, start + timedelta(hours=first))
            stopped = _live(path, plugins, clock, start + timedelta(hours=last), started)
            assert stopped.failed == ()
    hourly = [moment for name, moment in started.runs if name == "often"]
    daily = [moment for name, moment in started.runs if name == "daily"]
    back = start + timedelta(hours=39)
    # every hour once, except 10:00-14:00 of the outage day, which the run at 15:00:20 covers
    assert [m.replace(minute=0, second=0) for m in hourly] == [
        (start + timedelta(hours=h)).replace(second=0) for h in range(73) if not 35 <= h < 39
    ]
    assert back in hourly and len(hourly) == len(set(hourly)) == 69
    # 02:30 Berlin is 01:30 UTC before the change to summer time and 00:30 UTC after;
    # on the day of the change 02:30 does not exist, and the run comes an hour later
    assert [m.strftime("%m-%d %H:%M") for m in daily] == [
        "03-28 00:00",  # never ran: at once
        "03-28 01:30",
        "03-29 01:30",
        "03-30 00:30",
    ]


def test_run_once_runs_what_is_due_and_exits(tmp_path):
    with SimulatedAppliance("rs", sessions=3, seed=73, live_sessions=0, tls=False) as sim:
        config = write_config(tmp_path, sim, data=["session"])
        config.write_text(config.read_text().replace('every = "15m"', 'every = "1d"\nat = "00:00"'))
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
        first = subprocess.run(
            [BTIC, "run", "--once", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert first.returncode == 0, first.stderr
        assert "schedule finished" in first.stderr and "delivered=3" in first.stderr
        second = subprocess.run(
            [BTIC, "run", "--once", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert second.returncode == 0, second.stderr
        assert "schedule started" not in second.stderr
        # a new schedule (due at once) whose appliance cannot be reached: exit 1
        config.write_text(
            config.read_text()
            .replace(sim.host, f"127.0.0.1:{free_port()}")
            .replace("schedules.often", "schedules.fresh")
        )
        failing = subprocess.run(
            [BTIC, "run", "--once", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
        )
    assert len(list((tmp_path / "archive").glob("*.xml"))) == 3
    assert failing.returncode == 1, failing.stderr
    assert "site sim: token failed after 6 tries" in failing.stderr


def test_a_restarted_daemon_shows_the_last_runs_before_it_runs_anything(tmp_path):
    """The documented BticNoSuccessfulRun alert needs the last-success gauge from the
    first scrape on, not from the first run of this process."""
    pytest.importorskip("prometheus_client")
    with SimulatedAppliance("rs", sessions=3, seed=67, live_sessions=0) as sim:
        config = write_config(tmp_path, sim, data=["session"])
        synced = subprocess.run(
            [BTIC, "sync", "--all", "--config", str(config)], capture_output=True, text=True
        )
        assert synced.returncode == 0, synced.stderr
        with sqlite3.connect(tmp_path / "btic-state.db") as db:
            [(finished,)] = db.execute("select finished_at from btic_schedules").fetchall()
        port = free_port()
        log = tmp_path / "run.log"
        proc = _start(config, log, "--metrics-port", str(port))
        try:
            wait_for(lambda: "btic run started" in log.read_text(), 60, "the start", [proc])
            samples = _metrics(port)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()
    assert "schedule started" not in log.read_text()  # nothing was due: no run here
    expected = datetime.fromisoformat(str(finished)).replace(tzinfo=timezone.utc).timestamp()
    for gauge in ("last_success", "last_run"):
        name = f"btic_schedule_{gauge}_timestamp_seconds"
        assert samples[(name, (("schedule", "often"),))] == pytest.approx(expected, abs=1)


def test_an_idle_daemon_writes_an_hourly_digest_into_each_destination(tmp_path):
    """With [integrity], a destination no run wrote to still gets a digest every hour,
    chained and signed: the auditor's verifier accepts the chain, and its times show
    that btic watched the archive."""
    keys = tmp_path / "keys"
    made = subprocess.run([BTIC, "integrity", "keygen", "--dir", str(keys)], capture_output=True)
    assert made.returncode == 0, made.stderr
    with SimulatedAppliance("rs", sessions=0, live_sessions=0, presentations=0) as sim:
        path = write_config(tmp_path, sim, data=["session"])
        with path.open("a") as more:
            more.write(f'[integrity]\nsigning_key = "file:{keys / "btic-signing.key"}"\n')
        plugins = PluginManager.from_environment().discover()
        start = datetime.now(timezone.utc)
        stopped = _live(path, plugins, Clock(start), start + timedelta(minutes=150))
    assert stopped.failed == ()
    with sqlite3.connect(tmp_path / "btic-state.db") as db:
        written = db.execute("select run_id, created_at from btic_digests order by name").fetchall()
    # at 0, past 60 and past 120 simulated minutes: not one a tick
    assert [run for run, _ in written] == ["idle"] * 3
    digests = sorted((tmp_path / "archive" / ".btic-digests").glob("*.json"))
    assert len(digests) == 3
    audited = subprocess.run(
        [BTIC, "integrity", "verify", str(tmp_path / "archive"), "--public-key",
         str(keys / "btic-signing.pub"), "--json"], capture_output=True, text=True,
    )  # fmt: skip
    assert audited.returncode == 0, audited.stderr
    assert json.loads(audited.stdout)["digests"] == 3
