"""Log files: JSON lines, one file per day, old days removed, secrets never written
(not even in a plugin's own log lines or its traceback)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from conftest import run_btic
from transfer_helpers import write_config

from btic.logs import DailyFiles
from btic.sim import SimulatedAppliance

PASSWORD = "leaky-pw-91c2d7e4b6"

LEAKY_PLUGIN = """
import btic
from pydantic import BaseModel, ConfigDict

class Leaky:
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        password: btic.Secret

    @btic.hookimpl
    def on_configure(self, destination, options, app):
        self.password = options.password.get_secret_value()

    @btic.hookimpl
    def on_session_xml(self, session, xml, ctx):
        ctx.log.warning("logging in", password=self.password)
        raise RuntimeError(f"login with {self.password} refused")
"""


def test_log_lines_are_json_per_day_carry_the_run_and_never_a_secret(tmp_path, distributions):
    site_packages = distributions.make(
        "btic-leaky", "1.0", {"leaky": "leaky_plugin:Leaky"}, {"leaky_plugin": LEAKY_PLUGIN}
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    today = datetime.now(timezone.utc).date()
    old = logs / f"btic-{(today - timedelta(days=31)).isoformat()}.jsonl"
    recent = logs / f"btic-{(today - timedelta(days=29)).isoformat()}.jsonl"
    for path in (old, recent):
        path.write_text('{"event": "an old day"}\n')
    with SimulatedAppliance("rs", sessions=3, seed=7, live_sessions=0) as sim:
        config = write_config(
            tmp_path,
            sim,
            data=["session"],
            destinations=(
                f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "a"}"\n'
                '[destinations.leaky]\nplugin = "leaky"\npassword = "env:LEAKY_PASSWORD"\n'
            ),
            dest_names=("archive", "leaky"),
        )
        config.write_text(config.read_text() + f'[logging]\ndirectory = "{logs}"\n')
        result = run_btic(
            "sync",
            "--config",
            str(config),
            env={"LEAKY_PASSWORD": PASSWORD},
            pythonpath=[site_packages],
        )
    assert result.returncode == 1, result.output  # the leaky destination failed every item
    assert PASSWORD not in result.output
    assert not old.exists() and recent.exists()  # 31 days back is past the 30 kept
    today_file = logs / f"btic-{today.isoformat()}.jsonl"
    text = today_file.read_text()
    assert PASSWORD not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert all({"timestamp", "level", "event"} <= line.keys() for line in lines)
    delivered = [line for line in lines if line["event"] == "delivered"]
    assert len(delivered) == 3
    assert all(
        line["site"] == "sim" and line["destination"] == "archive" and line["schedule"] == "often"
        for line in delivered
    )
    assert len({line["run_id"] for line in delivered}) == 1
    leaked = [line for line in lines if line["event"] == "logging in"]
    assert leaked and all(line["password"] == "********" for line in leaked)
    tracebacks = [line for line in lines if "Traceback" in line.get("traceback", "")]
    assert tracebacks and "login with ******** refused" in tracebacks[0]["traceback"]


def test_daily_files_roll_over_at_midnight_and_drop_old_days(tmp_path):
    now = [datetime(2026, 3, 10, 23, 59, tzinfo=timezone.utc)]
    (tmp_path / "btic-2026-03-01.jsonl").write_text("{}\n")
    (tmp_path / "btic-2026-03-02.jsonl").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("not a log file\n")
    files = DailyFiles(tmp_path, 8, clock=lambda: now[0])
    files.write({"event": "before midnight"})
    # 8 days before 03-10 is kept; 03-01 went
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == [
        "btic-2026-03-02.jsonl",
        "btic-2026-03-10.jsonl",
    ]
    now[0] += timedelta(minutes=2)
    files.write({"event": "after midnight"})
    files.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "btic-2026-03-10.jsonl",
        "btic-2026-03-11.jsonl",
        "notes.txt",
    ]
    assert json.loads((tmp_path / "btic-2026-03-11.jsonl").read_text()) == {
        "event": "after midnight"
    }
