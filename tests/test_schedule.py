"""When schedules are due: simulated weeks of one-minute ticks against btic.schedule,
and `btic sync` against the simulator."""

from __future__ import annotations

import sqlite3
from datetime import datetime, time, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from conftest import run_btic
from transfer_helpers import write_config

from btic.schedule import Period, choose
from btic.sim import SimulatedAppliance
from btic.testing.servers import free_port


@pytest.fixture
def sim():
    with SimulatedAppliance("rs", sessions=6, seed=23, live_sessions=0) as appliance:
        yield appliance


BERLIN = ZoneInfo("Europe/Berlin")
MINUTE = timedelta(minutes=1)


def tick_week(period: Period, start: datetime, *, down: tuple[datetime, datetime] | None = None):
    """Call the scheduler every minute for a week (nothing runs while ``down``);
    return the moments it ran."""
    last = None
    ran = []
    now = start
    while now < start + timedelta(days=7):
        if not (down and down[0] <= now < down[1]) and period.is_due(last, now):
            ran.append(now)
            last = period.latest_slot(now)
        now += MINUTE
    return ran


def test_every_slot_runs_exactly_once_at_its_period():
    start = datetime(2026, 11, 2, 0, 0, 30, tzinfo=timezone.utc)  # cron fires at :30 s
    ran = tick_week(Period(timedelta(minutes=15)), start)
    assert len(ran) == 7 * 24 * 4
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(ran))
    assert {moment.minute for moment in ran} == {0, 15, 30, 45}


def test_an_outage_gives_one_catch_up_run_per_schedule():
    start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    outage = (start + timedelta(hours=10, minutes=7), start + timedelta(hours=16, minutes=3))
    ran = tick_week(Period(timedelta(hours=1)), start, down=outage)
    # 6 hourly slots (11:00 to 16:00) fell in the outage: one run catches up (at 16:03).
    assert len(ran) == 7 * 24 - 6 + 1
    assert outage[1] in ran and outage[1] + timedelta(hours=1) - timedelta(minutes=3) in ran


def test_a_time_of_day_is_honoured_across_daylight_saving_changes():
    nightly = Period(timedelta(days=1), time(2, 0), BERLIN)
    # The week in which Berlin falls back (25 October 2026, 03:00 CEST -> 02:00 CET).
    autumn = tick_week(nightly, datetime(2026, 10, 21, tzinfo=timezone.utc))
    assert len(autumn) == 7
    assert all(moment.astimezone(BERLIN).time() == time(2, 0) for moment in autumn)
    # The week in which it springs forward (29 March 2026, 02:00 CET -> 03:00 CEST):
    # 02:30 does not exist that day; the schedule still runs once, just after the gap.
    half_past = Period(timedelta(days=1), time(2, 30), BERLIN)
    spring = tick_week(half_past, datetime(2026, 3, 25, 1, 30, tzinfo=timezone.utc))
    local = [moment.astimezone(BERLIN) for moment in spring]
    days = [m.date() for m in local]
    assert len(days) == len(set(days)) and all(
        b - a == timedelta(days=1) for a, b in pairwise(days)
    )
    assert [m.time() for m in local if m.day != 29] == [time(2, 30)] * (len(local) - 1)
    assert [m.time() for m in local if m.day == 29] == [time(3, 30)]


def test_every_two_days_at_a_time_and_weekly():
    every_other = tick_week(
        Period(timedelta(days=2), time(23, 15), BERLIN), datetime(2026, 11, 2, tzinfo=timezone.utc)
    )
    # The first call runs at once (the schedule never ran), then every other day at 23:15.
    assert len(every_other) in (4, 5)
    assert all(b - a == timedelta(days=2) for a, b in pairwise(every_other[1:]))
    assert all(m.astimezone(BERLIN).time() == time(23, 15) for m in every_other[1:])
    weekly = tick_week(
        Period(timedelta(days=7)), datetime(2026, 11, 2, 0, 0, 30, tzinfo=timezone.utc)
    )
    assert len(weekly) == 1


def test_run_now_covers_the_current_slot_and_the_rest_wait():
    now = datetime(2026, 11, 23, 10, 5, tzinfo=timezone.utc)
    periods = {
        "often": Period(timedelta(minutes=15)),
        "nightly": Period(timedelta(days=1), time(2, 0), timezone.utc),
    }
    last = {"often": datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc), "nightly": None}
    choice = choose(periods, last, now)
    assert choice.due == [("nightly", datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))]
    assert choice.waiting == [("often", datetime(2026, 11, 23, 10, 15, tzinfo=timezone.utc))]
    forced = choose(periods, last, now, anyway=True)
    assert [name for name, _ in forced.due] == ["often", "nightly"]


def test_btic_sync_twice_in_a_row_runs_a_daily_schedule_once(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session"])
    config.write_text(config.read_text().replace('every = "15m"', 'every = "1d"\nat = "00:00"'))
    first = run_btic("sync", "-v", "--config", str(config))
    assert first.returncode == 0, first.output
    assert "schedule often: ran" in first.stderr
    second = run_btic("sync", "-v", "--config", str(config))
    assert second.returncode == 0, second.output
    assert "schedule often: not due; next at" in second.stderr
    with sqlite3.connect(tmp_path / "btic-state.db") as db:
        assert db.execute("select count(*) from btic_runs where kind = 'sync'").fetchone() == (1,)
        (status,) = db.execute("select status from btic_schedules where name = 'often'").fetchone()
    assert status == "ok"
    forced = run_btic("sync", "-v", "--schedule", "often", "--config", str(config))
    assert forced.returncode == 0 and "schedule often: ran" in forced.stderr


def test_an_unreachable_appliance_still_counts_as_the_schedules_run(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session"])
    closed = free_port()
    config.write_text(
        config.read_text()
        .replace(sim.host, f"127.0.0.1:{closed}")
        .replace('every = "15m"', 'every = "1d"\nat = "00:00"')
    )
    failed = run_btic("sync", "--config", str(config))
    assert failed.returncode == 1
    again = run_btic("sync", "-v", "--config", str(config))
    # As the guide says: the failure was reported, and the schedule waits for its next time.
    assert again.returncode == 0 and "not due" in again.stderr
    with sqlite3.connect(tmp_path / "btic-state.db") as db:
        assert db.execute("select status from btic_schedules").fetchall() == [("failed",)]


def test_a_schedule_another_process_is_running_is_not_run_again(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session"])
    assert run_btic("check", "--offline", "--config", str(config)).returncode == 0
    first = run_btic("sync", "--config", str(config))  # creates the state database
    assert first.returncode == 0, first.output
    with sqlite3.connect(tmp_path / "btic-state.db") as db:
        db.execute(
            "insert into btic_locks values ('schedule/often', 'elsewhere:4242:run', ?, ?)",
            (datetime.now(timezone.utc).isoformat(), "2999-01-01 00:00:00.000000"),
        )
    held = run_btic("sync", "--all", "-v", "--config", str(config))
    assert held.returncode == 0, held.output
    assert (
        "schedule often: being run by another process (elsewhere:4242:run); not here" in held.stderr
    )
    with sqlite3.connect(tmp_path / "btic-state.db") as db:
        assert db.execute("select count(*) from btic_runs where kind = 'sync'").fetchone() == (1,)
