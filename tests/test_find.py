"""``btic find``: sessions in the archive from the state database alone, by the fields
an auditor asks about, with where each item is."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from conftest import run_btic
from hostile import report, session_xml
from transfer_helpers import write_config

from btic.appliance.parse import iter_sessions
from btic.sim import FrozenClock, SimulatedAppliance

DATA = ["session", "recording", "command_shell_recording"]


def _archived_sessions(archive: Path, host: str):
    """Every session report in the archive, parsed by btic's own parser."""
    for path in archive.rglob("*.xml"):
        wrapped = (
            b'<session_list xmlns="https://www.beyondtrust.com/namespaces/API/reporting">'
            + path.read_bytes().split(b"?>", 1)[-1]
            + b"</session_list>"
        )
        yield from (
            s
            for s, _ in iter_sessions(
                io.BytesIO(wrapped), product="rs", report="support", host=host
            )
        )


def _find(config, *args):
    result = run_btic("find", "--config", str(config), "--json", *args)
    assert result.returncode == 0, result.output
    return json.loads(result.stdout)


def test_find_answers_from_the_ledger_with_every_item_and_its_proof(tmp_path):
    with SimulatedAppliance(
        "rs", sessions=12, seed=11, live_sessions=0, presentations=0, recording_size=30_000,
        clock=FrozenClock(), state_dir=tmp_path,  # its CA stays for the finds below
    ) as sim:  # fmt: skip
        config = write_config(tmp_path, sim, data=DATA)
        with config.open("a") as more:
            more.write(
                f'[destinations.sql]\nplugin = "sqlserver"\nurl = "sqlite:///{tmp_path / "reports.db"}"\n'
                '[[schedules.often.transfers]]\nsite = "sim"\ndestinations = ["sql"]\n'
                'data = ["session"]\n'
            )
        synced = run_btic("sync", "--all", "--config", str(config))
        assert synced.returncode == 0, synced.output
        sessions = list(_archived_sessions(tmp_path / "archive", sim.host))
    assert len(sessions) == 12

    everything = _find(config)
    assert everything["count"] == 12
    assert {s["lsid"] for s in everything["sessions"]} == {s.lsid for s in sessions}
    ends = [s["end_time"] for s in everything["sessions"]]
    assert ends == sorted(ends, reverse=True)  # the latest first
    for found in everything["sessions"]:
        places = {(i["destination"], i["data_type"]) for i in found["items"]}
        assert ("archive", "session") in places and ("sql", "session") in places
        for item in found["items"]:
            assert item["status"] in ("delivered", "no_recording"), item
            if item["destination"] == "archive" and item["status"] == "delivered":
                # the ledger's sha256 is of the bytes on disk
                data = Path(item["location"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == item["sha256"]

    # by a representative: username, display name (any case), gsnumber, a prefix
    rep = next(r for s in sessions for r in s.representatives if r.username)
    with_rep = {
        s.lsid for s in sessions if any(r.username == rep.username for r in s.representatives)
    }
    for term in (rep.username, rep.username.upper(), str(rep.gsnumber), rep.username[:3] + "*"):
        lsids = {s["lsid"] for s in _find(config, "--person", term)["sessions"]}
        if term.endswith("*"):
            assert with_rep <= lsids
        else:
            assert lsids >= with_rep and (term != rep.username or lsids == with_rep), term
    # by an endpoint's host name, and by a data type
    customer = next(c for s in sessions for c in s.customers if c.hostname)
    with_host = {
        s.lsid for s in sessions if any(c.hostname == customer.hostname for c in s.customers)
    }
    assert {s["lsid"] for s in _find(config, "--host", customer.hostname)["sessions"]} == with_host
    shells = _find(config, "--type", "command_shell_recording")
    expected = {s.lsid for s in sessions if s.command_shell_recordings}
    assert {s["lsid"] for s in shells["sessions"]} == expected
    for found in shells["sessions"]:
        assert {i["data_type"] for i in found["items"]} == {"command_shell_recording"}
        assert all("#" in i["item_key"] for i in found["items"])
    # a time window, and nothing at all
    newest = everything["sessions"][0]
    assert [s["lsid"] for s in _find(config, "--since", newest["end_time"])["sessions"]] == [
        newest["lsid"]
    ]
    assert _find(config, "--person", "nobody-by-this-name")["count"] == 0

    # CSV: one row per item, the header first
    table = run_btic("find", "--config", str(config), "--csv")
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert len(rows) == sum(len(s["items"]) for s in everything["sessions"])
    assert {r["lsid"] for r in rows} == {s.lsid for s in sessions}
    # a terminal's table
    shown = run_btic("find", "--config", str(config), "--lsid", newest["lsid"])
    assert shown.returncode == 0 and newest["lsid"] in shown.stdout


def test_find_reads_people_and_machines_as_the_guides_shape_them(tmp_path):
    """A report built from the guide's element tables, imported: every identifier of a
    representative and a customer finds it, folded (case, full-width forms)."""
    extra = (
        '<primary_rep gsnumber="7" id="12">Ada Lovelace</primary_rep>'
        '<customer_list><customer gsnumber="3"><username>jdoe</username>'
        "<public_ip>203.0.113.9</public_ip><private_ip>10.0.0.9</private_ip>"
        "<hostname>WS-042</hostname><os>Windows 11</os><primary_cust>1</primary_cust>"
        "<info><name>Jane Doe</name><company>Ｅxample Corp</company></info></customer></customer_list>"
        '<rep_list><representative gsnumber="7" id="12"><username>alovelace</username>'
        "<display_name>Ada Lovelace</display_name><public_display_name>Ada</public_display_name>"
        "<hostname>REP-PC-1</hostname><session_owner>1</session_owner><primary_rep>1</primary_rep>"
        "</representative></rep_list>"
    )
    saved = tmp_path / "saved.xml"
    saved.write_bytes(report(session_xml("guide-1", extra=extra), session_xml("other-2")))
    config = tmp_path / "btic.toml"
    config.write_text(
        f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "archive"}"\n'
        f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
    )
    config.chmod(0o600)
    imported = run_btic(
        "import-xml", str(saved), "--dest", "archive", "--host", "support.example.com",
        "--config", str(config),
    )  # fmt: skip
    assert imported.returncode == 0, imported.output
    for option, term in (
        ("--person", "alovelace"), ("--person", "ADA LOVELACE"), ("--person", "ada"),
        ("--person", "7"), ("--customer", "jdoe"), ("--customer", "jane doe"),
        ("--customer", "example corp"), ("--customer", "3"), ("--host", "ws-042"),
        ("--host", "rep-pc-1"), ("--host", "WS-*"),
    ):  # fmt: skip
        found = _find(config, option, term)
        assert [s["lsid"] for s in found["sessions"]] == ["guide-1"], (option, term)
    guide = _find(config, "--lsid", "guide-1")["sessions"][0]
    assert guide["people"] == ["Ada Lovelace (alovelace)"]
    assert guide["customers"] == ["Jane Doe"]
    assert guide["start_time"] == "2023-11-14T22:03:20Z"
    # both filters must match
    assert _find(config, "--person", "alovelace", "--host", "ws-042")["count"] == 1
    assert _find(config, "--person", "alovelace", "--host", "elsewhere")["count"] == 0
    # a bad option value is one clear line, and --json still prints one document
    bad = run_btic("find", "--config", str(config), "--json", "--since", "yesterday-ish")
    assert bad.returncode == 2
    assert json.loads(bad.stdout)["ok"] is False


def test_find_and_export_say_when_each_item_was_last_verified(tmp_path):
    """verify records when it found each item as delivered; an item it found changed
    keeps the time it was last found right; find and the export manifest show it."""
    with SimulatedAppliance(
        "rs", sessions=4, seed=13, live_sessions=0, presentations=0, recording_size=5_000,
        clock=FrozenClock(), state_dir=tmp_path,
    ) as sim:  # fmt: skip
        config = write_config(tmp_path, sim, data=["session", "recording"])
        assert run_btic("sync", "--all", "--config", str(config)).returncode == 0

    def delivered() -> dict[str, dict]:
        found = _find(config)
        return {
            i["location"]: i
            for s in found["sessions"]
            for i in s["items"]
            if i["status"] == "delivered"
        }

    assert delivered() and all(i["verified_at"] is None for i in delivered().values())
    assert run_btic("verify", "--config", str(config)).returncode == 0
    first = delivered()
    assert all(i["verified_at"] is not None for i in first.values())
    victim = sorted(first)[0]
    Path(victim).write_bytes(Path(victim).read_bytes() + b"!")
    assert run_btic("verify", "--config", str(config)).returncode == 1
    second = delivered()
    assert second[victim]["verified_at"] == first[victim]["verified_at"]
    assert all(
        second[loc]["verified_at"] != first[loc]["verified_at"] for loc in second if loc != victim
    )
    out = tmp_path / "case"
    assert run_btic("export", "--out", str(out), "--config", str(config)).returncode == 0
    manifest = json.loads((out / "manifest.json").read_bytes())["items"]
    by_location = {e["location"]: e for e in manifest}
    assert by_location[victim]["verified_at"] == first[victim]["verified_at"]
