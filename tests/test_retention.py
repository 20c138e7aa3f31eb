"""Retention and legal holds, on every shipped destination: with the clock moved past
the rules, what is older goes (files, objects, every row of a session), what is held
stays, and nothing removed is fetched again or called missing."""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import run_btic

from btic.plugins import PluginManager
from btic.retention import Retention
from btic.sim import FrozenClock, SimulatedAppliance
from btic.state import REMOVED
from btic.testing.helpers import run_transfer
from btic.transfer.summary import Summary
from btic.types import default_logger

sys.path.insert(0, str(Path(__file__).resolve().parent / "plugins" / "s3"))
from s3_server import S3Server, moto_server

RULES = {"session": "7d", "recording": "7d", "command_shell_recording": "7d"}


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        yield server


def _destination(kind: str, tmp_path: Path, request: pytest.FixtureRequest):
    """(plugin, options, data types, a reader of what the destination holds)."""
    if kind == "filesystem":
        root = tmp_path / "archive"

        def held() -> set[str]:
            return {str(p) for p in root.rglob("*") if p.is_file()} if root.exists() else set()

        return "filesystem", {"directory": str(root)}, list(RULES), held
    if kind == "sqlserver":
        url = f"sqlite:///{tmp_path / 'reports.db'}"

        def held() -> set[str]:
            from btic_sqlserver import schema

            with sqlite3.connect(tmp_path / "reports.db") as db:
                rows = db.execute("select host_name, lsid from session").fetchall()
                # A removed session leaves no row in any table: no orphan anywhere.
                orphans = [
                    table.name
                    for table in schema.SESSION_CHILDREN
                    if db.execute(
                        f"select count(*) from {table.name} where session_id not in "
                        "(select id from session)"
                    ).fetchone()[0]
                ] + [
                    table.name
                    for table in schema.EVENT_CHILDREN
                    if db.execute(
                        f"select count(*) from {table.name} where session_event_id not in "
                        "(select id from session_event)"
                    ).fetchone()[0]
                ]
            return {f"session/{h}/{lsid}" for h, lsid in rows} | {f"orphan {t}" for t in orphans}

        return "sqlserver", {"url": url}, ["session"], held
    server: S3Server = request.getfixturevalue("s3")
    bucket = server.bucket(f"retention-{abs(hash(str(tmp_path))) % 10**9}")

    def held() -> set[str]:
        return {f"s3://{bucket}/{key}" for key in server.objects(bucket)}

    return "s3", server.options(bucket), list(RULES), held


@pytest.mark.parametrize("kind", ["filesystem", "sqlserver", "s3"])
def test_retention_removes_what_is_past_its_time_and_keeps_what_is_held(kind, tmp_path, request):
    plugin, options, data, holding = _destination(kind, tmp_path, request)
    rules = {k: v for k, v in RULES.items() if k in data}
    with SimulatedAppliance(
        "rs", sessions=10, seed=23, live_sessions=0, presentations=0, recording_size=20_000,
        clock=FrozenClock(),
    ) as sim:  # fmt: skip
        first = run_transfer(sim, tmp_path=tmp_path, plugin=plugin, data=data,
                             options={**options, "retention": rules})  # fmt: skip
        assert not first.summary.failed, first.summary.problems
        state, config = first.state, first.config
        before = holding()
        assert before
        sessions = sorted(state.find_sessions(_everything()), key=lambda s: s.lsid)
        kept = sessions[0]
        state.add_holds("sim", [kept.lsid], reason="case 42", held_by="auditor")

        plugins = PluginManager().discover()
        config.configure_destination(plugins, "under-test")
        # Not yet: a day later nothing is past seven days.
        early = Retention(config, plugins, state, run_id="r1", log=default_logger(),
                          clock=lambda: _at(sim) + timedelta(days=1))  # fmt: skip
        assert early.apply(["under-test"], Summary()) == []
        assert holding() == before
        # A month later everything is, but the held session.
        summary = Summary()
        later = Retention(config, plugins, state, run_id="r2", log=default_logger(),
                          clock=lambda: _at(sim) + timedelta(days=30))  # fmt: skip
        removed = later.apply(["under-test"], summary)
        assert not summary.problems, summary.problems
        assert removed and all(r.item_key.partition("#")[0] != kept.lsid for r in removed)
        assert sum(t.removed for t in summary.tallies.values()) == len(removed)
        left = holding()
        assert {r.location for r in removed}.isdisjoint(left)
        assert left and left < before
        if kind == "sqlserver":
            assert left == {f"session/{sim.host}/{kept.lsid}"}
        rows = {
            (e.data_type, e.item_key): e.status for e in state.entries(destination="under-test")
        }
        for removal in removed:
            assert rows[(removal.data_type.value, removal.item_key)] == REMOVED
        # Removed items are settled: a second transfer fetches nothing again.
        again = run_transfer(sim, tmp_path=tmp_path, plugin=plugin, data=data, options=options)
        assert not again.summary.failed, again.summary.problems
        assert sum(t.delivered for t in again.summary.tallies.values()) == 0
        assert holding() == left
        plugins.close()


def _everything():
    from btic.state.session_index import SessionQuery

    return SessionQuery(limit=1000)


def _at(sim: SimulatedAppliance) -> datetime:
    return datetime.fromtimestamp(sim.now(), timezone.utc)


def test_retention_and_holds_from_the_command_line(tmp_path):
    """A rule shorter than the floor is refused; a dry run lists; holds are listed
    with who and why; verify does not call a removed item missing."""
    archive = tmp_path / "archive"
    base = (
        f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{archive}"\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
    )
    config = tmp_path / "btic.toml"
    config.write_text(base + '[destinations.archive.retention]\nsession = "2h"\n')
    config.chmod(0o600)
    refused = run_btic("retention", "--dry-run", "--config", str(config))
    assert refused.returncode == 2
    assert (
        "error: destinations.archive.retention.session: 2h is shorter than the retention "
        "floor 1d ([retention] floor)" in refused.stderr
    )
    from hostile import report, session_xml

    saved = tmp_path / "saved.xml"
    old, new = 1_600_000_000, int(datetime.now(timezone.utc).timestamp()) - 3600
    saved.write_bytes(report(session_xml("old-1", end=old), session_xml("old-2", end=old),
                             session_xml("new-1", end=new)))  # fmt: skip
    # Imported before the rule exists (a run applies the rules it has, imports too).
    config.write_text(base)
    imported = run_btic("import-xml", str(saved), "--dest", "archive", "--host", "h",
                        "--config", str(config))  # fmt: skip
    assert imported.returncode == 0, imported.output
    config.write_text(base + '[destinations.archive.retention]\nsession = "30d"\n')
    held = run_btic("hold", "add", "--site", "h", "--lsid", "old-2", "--reason", "case 7",
                    "--by", "dpo", "--config", str(config))  # fmt: skip
    assert held.returncode == 0, held.output
    listing = run_btic("hold", "list", "--json", "--config", str(config))
    import json

    assert [
        (h["lsid"], h["reason"], h["held_by"]) for h in json.loads(listing.stdout)["holds"]
    ] == [("old-2", "case 7", "dpo")]
    dry = run_btic("retention", "--dry-run", "--json", "--config", str(config))
    assert dry.returncode == 0, dry.output
    assert [r["item_key"] for r in json.loads(dry.stdout)["removed"]] == ["old-1"]
    assert len(list(archive.rglob("*.xml"))) == 3  # a dry run removes nothing
    applied = run_btic("retention", "--config", str(config))
    assert applied.returncode == 0, applied.output
    assert "1 item(s) removed" in applied.stdout
    names = sorted(p.name for p in archive.rglob("*.xml"))
    assert len(names) == 2 and not any("old-1" in n for n in names)
    verified = run_btic("verify", "--config", str(config))
    assert verified.returncode == 0, verified.output
    lifted = run_btic("hold", "remove", "--site", "h", "--lsid", "old-2", "--config", str(config))
    assert lifted.returncode == 0 and "1 hold(s) lifted" in lifted.stdout
    again = run_btic("retention", "--config", str(config))
    assert "1 item(s) removed" in again.stdout
