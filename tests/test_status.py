"""`btic status`: schedules, each destination's standing, failures, runs and leases."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import pytest
from conftest import run_btic
from transfer_helpers import write_config

from btic.sim import SimulatedAppliance


@pytest.fixture
def sim():
    with SimulatedAppliance("rs", sessions=6, seed=29, live_sessions=0) as appliance:
        yield appliance


def test_status_shows_schedules_counts_failures_and_leases(sim, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    config = write_config(
        tmp_path,
        sim,
        data=["session"],
        destinations=(
            f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "a"}"\n'
            f'[destinations.broken]\nplugin = "filesystem"\ndirectory = "{blocker / "b"}"\n'
        ),
        dest_names=("archive", "broken"),
    )
    synced = run_btic("sync", "--config", str(config))
    assert synced.returncode == 1  # the broken destination
    with sqlite3.connect(tmp_path / "btic-state.db") as db:
        delivered = db.execute(
            "select count(*) from btic_deliveries where destination = 'archive' "
            "and status = 'delivered'"
        ).fetchone()[0]
        db.execute(
            "insert into btic_locks values ('schedule/often', 'host:1:run', "
            "'2026-01-01 00:00:00', '2999-01-01 00:00:00')"
        )
    shown = run_btic("status", "--json", "--config", str(config))
    assert shown.returncode == 1, shown.output  # something is failing, as it says
    status = json.loads(shown.stdout)
    assert status["ok"] is False
    (often,) = status["schedules"]
    assert often["every"] == "15m" and often["last_result"] == "failed"
    assert often["next_run"] != "now (due)"
    datetime.fromisoformat(often["next_run"])
    streams = {s["destination"]: s for s in status["destinations"]}
    assert streams["archive"]["counts"] == {"delivered": delivered} and delivered > 0
    assert streams["archive"]["watermark"] is not None
    failing = streams["broken"]["failing"]
    assert failing and all("not-a-directory" in item["error"] for item in failing)
    # Each watermark moves only over what its destination has: the broken one stops
    # before its earliest failed session.
    assert streams["broken"]["watermark"] < streams["archive"]["watermark"]
    assert status["leases"] == [
        {"name": "schedule/often", "owner": "host:1:run", "expires_at": "2999-01-01T00:00:00+00:00"}
    ]
    text = run_btic("status", "--config", str(config))
    assert text.returncode == 1
    assert "often: every 15m; last run" in text.stdout and "(failed)" in text.stdout
    assert f"sim -> archive session: {delivered} delivered" in text.stdout
    assert "lease: schedule/often held by host:1:run" in text.stdout


PICKY_PLUGIN = """
import pathlib
import btic
from pydantic import BaseModel, ConfigDict

class Picky:
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        directory: str

    @btic.hookimpl
    def on_configure(self, destination, options, app):
        self.directory = pathlib.Path(options.directory)

    @btic.hookimpl
    def on_session_xml(self, session, xml, ctx):
        if not (self.directory / "open").exists():
            raise btic.DestinationError("closed for now", permanent=True)
        (self.directory / f"{session.lsid}.xml").write_bytes(xml)
        return btic.Delivery(location=session.lsid)
"""


def test_retry_puts_given_up_items_back_and_the_next_sync_delivers_them(
    sim, tmp_path, distributions
):
    site_packages = distributions.make(
        "btic-picky", "1.0", {"picky": "picky_plugin:Picky"}, {"picky_plugin": PICKY_PLUGIN}
    )
    box = tmp_path / "box"
    box.mkdir()
    config = write_config(
        tmp_path,
        sim,
        data=["session"],
        destinations=f'[destinations.picky]\nplugin = "picky"\ndirectory = "{box}"\n',
        dest_names=("picky",),
    )

    def btic(*args):
        return run_btic(*args, "--config", str(config), pythonpath=[site_packages])

    refused = btic("sync")
    assert refused.returncode == 1
    assert "given up until btic retry" in refused.stderr

    def statuses():
        with sqlite3.connect(tmp_path / "btic-state.db") as db:
            return sorted(r[0] for r in db.execute("select status from btic_deliveries"))

    # three refusals in a row leave the destination alone for the run; the next takes the rest
    assert statuses() == ["given_up"] * 3
    assert btic("sync", "--all").returncode == 1
    assert statuses() == ["given_up"] * 6
    assert btic("sync", "--all").returncode == 0  # given up: not offered again
    assert list(box.glob("*.xml")) == []
    (box / "open").touch()
    retried = btic("retry", "--dest", "picky")
    assert retried.returncode == 0, retried.output
    assert "re-queued 6 session of sim for picky" in retried.stdout
    assert statuses() == ["failed"] * 6
    delivered = btic("sync", "--all")
    assert delivered.returncode == 0, delivered.output
    assert statuses() == ["delivered"] * 6 and len(list(box.glob("*.xml"))) == 6
    assert btic("retry").stdout.strip() == "nothing is given up"
    unknown = btic("retry", "--site", "elsewhere")
    assert unknown.returncode == 2 and "elsewhere" in unknown.stderr
