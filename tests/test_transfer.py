"""Transfers end to end: btic sync/transfer/import-xml against the simulator over HTTPS."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import run_btic
from lxml import etree
from transfer_helpers import ALL_TYPES, check_archive, expected_files, host_part, write_config

from btic.errors import SpoolError
from btic.sim import FrozenClock, SimulatedAppliance


@pytest.fixture
def sim():
    # A frozen clock: its two sessions in progress end when a test moves the clock
    # (faults.clock_offset), never while a slow machine runs two runs it compares.
    with SimulatedAppliance(
        "rs",
        sessions=16,
        seed=21,
        recording_size=150_000,
        live_sessions=2,
        live_interval=30,
        clock=FrozenClock(),
    ) as appliance:
        yield appliance


def ledger(tmp_path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "btic-state.db") as connection:
        return connection.execute(query).fetchall()


def test_everything_lands_with_the_right_names_and_bytes(sim, tmp_path):
    config = write_config(tmp_path, sim, data=[*ALL_TYPES, "backup"])
    result = run_btic("sync", "--all", "--config", str(config))
    assert result.returncode == 0, result.output
    expected = expected_files(sim)
    assert any(n.endswith(".xml") and "-presentation-" in n for n in expected)
    assert any("-shell-" in n for n in expected) and any("-sms-" in n for n in expected)
    [(backup_time, _backup_size, backup_sha)] = sim.backups_served
    # Named by the appliance's clock read right after the download (its own request):
    # the same second as the serving, or the next.
    (backup,) = (tmp_path / "archive").glob("*.nsb")
    stamp = datetime.strptime(backup.name.rsplit("-", 1)[1], "%Y%m%dT%H%M%SZ.nsb")
    assert 0 <= stamp.replace(tzinfo=timezone.utc).timestamp() - int(backup_time) <= 2
    assert backup.name.startswith(f"{host_part(sim)}-backup-")
    expected[backup.name] = backup_sha
    check_archive(tmp_path / "archive", expected)
    # each session file is the appliance's own <session>, whole
    one = next(n for n in expected if n.endswith(".xml"))
    root = etree.fromstring((tmp_path / "archive" / one).read_bytes())
    assert root.tag == "{https://www.beyondtrust.com/namespaces/API/reporting}session"
    assert one.endswith(f"-{root.get('lsid')}.xml")
    # a run off a terminal that went well says nothing (cron mails nothing)...
    assert result.stdout == "" and "error" not in result.stderr
    # ... and with -v, the summary counts what happened (here: the nightly backup again)
    verbose = run_btic("sync", "--all", "-v", "--config", str(config))
    assert "archive      backup" in verbose.stdout
    rows = dict(ledger(tmp_path, "select status, count(*) from btic_deliveries group by status"))
    assert "failed" not in rows


@pytest.mark.parametrize(
    ("product", "report_from", "instance_in_urls"),
    [("rs", 1, True), ("rs", 1, False), ("rs", 0, True), ("rs", 0, False), ("pa", None, False)],
)
def test_command_shells_under_either_numbering(product, report_from, instance_in_urls, tmp_path):
    with SimulatedAppliance(
        product,
        sessions=24,
        seed=31,
        recording_size=40_000,
        live_sessions=0,
        shell_report_from=report_from,
        instance_in_urls=instance_in_urls,
    ) as appliance:
        numbered = [s for s in appliance.dataset.all() if s.shell_instances > 1]
        assert numbered, "the data set must hold sessions with several command shells"
        config = write_config(tmp_path, appliance, data=["command_shell_recording"])
        result = run_btic("sync", "--all", "--config", str(config))
        assert result.returncode == 0, result.output
        # names keep the report's numbering; bytes are the API instance's (report - shift)
        check_archive(
            tmp_path / "archive", expected_files(appliance, data=["command_shell_recording"])
        )


def test_a_second_run_transfers_nothing_and_asks_only_for_what_is_new(sim, tmp_path):
    config = write_config(tmp_path, sim)
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    before = dict(sim.stats)
    files_before = sorted((tmp_path / "archive").iterdir())
    again = run_btic("sync", "--all", "--config", str(config))
    assert again.returncode == 0, again.output
    asked = {
        k: sim.stats[k] - before.get(k, 0) for k in sim.stats if sim.stats[k] != before.get(k, 0)
    }
    assert asked.get("SupportSession", 0) == 0 and asked.get("PresentationSession", 0) == 0
    assert not any(k.endswith("Recording") for k in asked), asked
    assert asked["SupportSessionListing"] == 1 and asked["PresentationSessionListing"] == 1
    assert asked["token"] == 1
    assert sorted((tmp_path / "archive").iterdir()) == files_before
    assert "delivered" not in again.stderr


def test_sessions_that_end_during_a_run_are_picked_up_by_the_next(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session"], extra_site='settle_delay = "1s"\n')
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    live = [s for s in sim.dataset.all() if not s.closed_at(sim.now())]
    assert len(live) == 2
    # one ends "during" the run: just before the appliance's now when the next run starts
    sim.faults.clock_offset += live[-1].end - sim.now() + 5
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    names = {p.name for p in (tmp_path / "archive").iterdir()}
    for session in live:
        assert f"{host_part(sim)}-support-{session.lsid}.xml" in names
    assert len(names) == len(expected_files(sim, settle=1, data=["session"]))


@pytest.mark.parametrize("offset", [-3600, 3600])
def test_a_skewed_appliance_clock_loses_and_duplicates_nothing(offset, tmp_path):
    with SimulatedAppliance(
        "rs",
        sessions=10,
        seed=22,
        recording_size=50_000,
        live_sessions=3,
        live_interval=40,
        faults=f"clock={offset}",
    ) as sim:
        config = write_config(
            tmp_path, sim, data=["session", "recording"], extra_site='settle_delay = "1s"\n'
        )
        assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
        for _ in range(3):  # the live sessions end one by one between runs
            sim.faults.clock_offset += 40
            assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
        check_archive(
            tmp_path / "archive", expected_files(sim, settle=1, data=["session", "recording"])
        )
        rows = ledger(
            tmp_path,
            "select count(*), count(distinct item_key) from btic_deliveries "
            "where data_type = 'session'",
        )
        assert rows[0][0] == rows[0][1] == 13


def test_btic_transfer_by_lsid_window_dry_run_and_force(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session"])
    closed = [
        s for s in sim.dataset.all() if s.report == "support" and s.closed_at(sim.now() - 120)
    ]
    target = closed[3]
    one = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "archive",
        "--type",
        "session,recording",
        "--lsid",
        target.lsid,
    )
    assert one.returncode == 0, one.output
    names = sorted(p.name for p in (tmp_path / "archive").iterdir())
    assert names == sorted(
        n
        for n in (
            f"{host_part(sim)}-support-{target.lsid}.xml",
            f"{host_part(sim)}-support-{target.lsid}.flv" if target.has_recording else None,
        )
        if n
    )
    assert ledger(tmp_path, "select count(*) from btic_watermarks") == [
        (0,)
    ]  # manual: no watermark moves
    dry = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "archive",
        "--type",
        "session",
        "--since",
        "3d",
        "--dry-run",
    )
    assert dry.returncode == 0, dry.output
    assert f"would transfer {len(closed) - 1} session to archive" in dry.stdout
    assert target.lsid not in dry.stdout  # the ledger has it already
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == names  # nothing moved
    (tmp_path / "archive" / names[0]).write_bytes(b"tampered")
    forced = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "archive",
        "--type",
        "session",
        "--lsid",
        target.lsid,
        "--force",
    )
    assert forced.returncode == 0
    assert (
        tmp_path / "archive" / names[0]
    ).read_bytes() == b"tampered"  # AppendNumber never overwrites
    numbered = names[0].replace(".xml", ".1.xml")
    assert (tmp_path / "archive" / numbered).read_bytes().startswith(b"<?xml")
    by_date = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "archive",
        "--type",
        "session",
        "--start-date",
        datetime.fromtimestamp(closed[0].end, timezone.utc).strftime("%Y-%m-%d"),
        "--duration",
        "0",
        "--dry-run",
    )
    assert by_date.returncode == 0 and "would transfer" in by_date.stdout


def test_dry_run_names_where_each_report_would_go_and_agrees_with_the_real_run(sim, tmp_path):
    archive = tmp_path / "archive"
    config = write_config(tmp_path, sim, data=["session"])
    request = ["transfer", "--config", str(config), "--site", "sim", "--dest", "archive"]
    request += ["--type", "session,recording", "--since", "3d"]
    dry = run_btic(*request, "--dry-run")
    assert dry.returncode == 0, dry.output
    assert not archive.exists()  # a dry run writes nothing, not even the directory
    planned = dict(line.strip().split(" -> ") for line in dry.stdout.splitlines() if " -> " in line)
    assert planned, dry.stdout
    recordings = re.search(r"would transfer (\d+) recording to archive", dry.stdout)
    real = run_btic(*request, "--json")
    assert real.returncode == 0, real.output
    tallies = {row["data_type"]: row for row in json.loads(real.stdout)["tallies"]}
    assert f"would transfer {tallies['session']['delivered']} session to archive" in dry.stdout
    assert recordings and int(recordings.group(1)) == tallies["recording"]["delivered"]
    for lsid, location in planned.items():
        assert Path(location).read_bytes().startswith(b"<?xml"), lsid
        assert lsid in Path(location).name


def test_btic_transfer_rejects_bad_requests_clearly(sim, tmp_path):
    config = write_config(
        tmp_path,
        sim,
        data=["session"],
        destinations=(
            f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "a"}"\n'
            '[destinations.reports]\nplugin = "sqlserver"\nurl = "sqlite:///r.db"\n'
        ),
    )
    both = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "archive",
        "--type",
        "session",
    )
    assert both.returncode == 2 and "give exactly one of --since" in both.stderr
    wrong = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "nope",
        "--dest",
        "archive",
        "--type",
        "session",
        "--since",
        "1d",
    )
    assert wrong.returncode == 2 and "no site named 'nope'" in wrong.stderr
    cannot = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "reports",
        "--type",
        "recording",
        "--since",
        "1d",
    )
    assert cannot.returncode == 2
    assert "destination 'reports' (plugin sqlserver) cannot receive 'recording'" in cannot.stderr
    badtype = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "archive",
        "--type",
        "recordings",
        "--since",
        "1d",
    )
    assert badtype.returncode == 2 and "'recordings' is not a valid DataType" in badtype.stderr


def test_one_failing_destination_does_not_stop_the_other(sim, tmp_path):
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where a directory should be")
    destinations = (
        f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "archive"}"\n'
        f'[destinations.broken]\nplugin = "filesystem"\ndirectory = "{blocker / "sub"}"\n'
    )
    config = write_config(
        tmp_path,
        sim,
        data=["session", "recording"],
        destinations=destinations,
        dest_names=("archive", "broken"),
    )
    result = run_btic("sync", "--all", "--config", str(config))
    assert result.returncode == 1
    assert (
        "error: broken: session" in result.stderr
        and "cannot create the destination directory" in result.stderr
    )
    check_archive(tmp_path / "archive", expected_files(sim, data=["session", "recording"]))
    failed = ledger(
        tmp_path,
        "select count(*) from btic_deliveries where destination='broken' and status='failed'",
    )
    assert failed[0][0] > 0
    # fixed: the next run delivers what the broken one missed, and nothing twice to the other
    blocker.unlink()
    again = run_btic("sync", "--all", "--config", str(config))
    assert again.returncode == 0, again.output
    check_archive(blocker / "sub", expected_files(sim, data=["session", "recording"]))
    check_archive(tmp_path / "archive", expected_files(sim, data=["session", "recording"]))


def test_an_expired_recording_is_recorded_and_not_retried(tmp_path):
    with SimulatedAppliance(
        "rs", sessions=8, seed=23, expired_every=3, recording_size=20_000
    ) as sim:
        config = write_config(tmp_path, sim, data=["recording"])
        first = run_btic("sync", "--all", "--config", str(config))
        assert first.returncode == 0, first.output
        expired = ledger(tmp_path, "select count(*) from btic_deliveries where status='expired'")[
            0
        ][0]
        assert expired == sum(
            1
            for s in sim.dataset.all()
            if s.recording_expired
            and s.has_recording
            and s.closed_at(sim.now() - 120)
            and s.report == "support"
        )
        assert expired > 0
        before = sim.stats["SupportSessionRecording"]
        assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
        assert sim.stats["SupportSessionRecording"] == before


def test_import_xml_delivers_saved_reports_and_fetches_their_recordings(sim, tmp_path):
    saved, lsids = save_report(sim, tmp_path, 4)
    config = write_config(tmp_path, sim, data=["session"])
    result = run_btic(
        "import-xml",
        "--config",
        str(config),
        str(saved),
        "--dest",
        "archive",
        "--type",
        "session,recording",
        "--site",
        "sim",
    )
    assert result.returncode == 0, result.output
    names = {p.name for p in (tmp_path / "archive").iterdir()}
    assert {f"{host_part(sim)}-support-{lsid}.xml" for lsid in lsids} <= names
    with_recording = [s for s in sim.dataset.all() if s.lsid in lsids and s.has_recording]
    for s in with_recording:
        assert f"{host_part(sim)}-support-{s.lsid}.flv" in names
    # a later sync does not deliver the imported sessions again
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    assert not any(".1." in p.name for p in (tmp_path / "archive").iterdir())
    needs_site = run_btic(
        "import-xml",
        "--config",
        str(config),
        str(saved),
        "--dest",
        "archive",
        "--type",
        "recording",
        "--host",
        "x",
    )
    assert needs_site.returncode == 2 and "give --site" in needs_site.stderr


def test_import_xml_from_an_unconfigured_host_and_force_redelivers(sim, tmp_path):
    saved, lsids = save_report(sim, tmp_path, 3)
    config = write_config(tmp_path, sim, data=["session"])
    command = ["import-xml", "--config", str(config), str(saved), "--dest", "archive"]
    first = run_btic(*command, "--host", "old.example.com")
    assert first.returncode == 0, first.output
    archive = tmp_path / "archive"
    files = {p.name: p.read_bytes() for p in archive.iterdir()}
    assert set(files) == {f"old.example.com-support-{lsid}.xml" for lsid in lsids}
    lost = archive / f"old.example.com-support-{lsids[0]}.xml"
    lost.unlink()
    again = run_btic(*command, "--host", "old.example.com")
    assert again.returncode == 0, again.output
    assert not lost.exists(), "the ledger has it: a plain import delivers nothing again"
    forced = run_btic(*command, "--host", "old.example.com", "--force")
    assert forced.returncode == 0, forced.output
    assert {p.name: p.read_bytes() for p in archive.iterdir()} == files


def save_report(sim, tmp_path, count):
    """A SupportSession report of ``count`` closed sessions, saved as a user would."""
    from conftest import connect

    from btic.appliance.reports import Window, utc

    with connect(sim) as client:
        window = Window("end", utc(sim.now() - 5 * 86400))
        lsids = [e.lsid for e in client.list_sessions("support", window)][:count]
    saved = tmp_path / "saved.xml"
    saved.write_bytes(b"".join(run_raw_report(sim, lsids)))
    return saved, lsids


def run_raw_report(sim, lsids):
    import ssl

    import httpx

    token = sim.tokens.grant()
    with httpx.Client(verify=ssl.create_default_context(cafile=str(sim.ca_path))) as client:
        response = client.post(
            sim.url + "/api/reporting",
            headers={"Authorization": f"Bearer {token}"},
            data={"generate_report": "SupportSession", "lsids": ",".join(lsids)},
        )
        yield response.content


def test_json_download_format(sim, tmp_path):
    destinations = (
        f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "archive"}"\n'
        'download_format = "xml+json"\n'
    )
    config = write_config(tmp_path, sim, data=["session"], destinations=destinations)
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    jsons = sorted((tmp_path / "archive").glob("*.json"))
    assert jsons and len(jsons) == len(list((tmp_path / "archive").glob("*.xml")))
    document = json.loads(jsons[0].read_text())
    assert document["lsid"] in jsons[0].name and document["events"] and document["product"] == "rs"


def test_the_ledger_can_live_in_postgresql(sim, tmp_path, fresh_postgres):
    from btic.testing.helpers import run_transfer

    options = {"directory": str(tmp_path / "archive")}
    first = run_transfer(
        sim,
        tmp_path=tmp_path,
        plugin="filesystem",
        options=options,
        data=["session", "command_shell_recording"],
        state_url=fresh_postgres,
    )
    assert not first.summary.failed, first.summary.problems
    delivered = first.summary.tallies[("under-test", "session")].delivered
    assert delivered == len(
        [s for s in sim.dataset.all() if s.report == "support" and s.closed_at(sim.now() - 120)]
    )
    again = run_transfer(
        sim,
        tmp_path=tmp_path,
        plugin="filesystem",
        options=options,
        data=["session", "command_shell_recording"],
        state_url=fresh_postgres,
    )
    assert sum(t.delivered for t in again.summary.tallies.values()) == 0
    assert first.state.count() == again.state.count() > delivered


def test_btic_demo_archives_a_simulated_appliance(tmp_path):
    result = run_btic("demo", "--directory", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.output
    archive = tmp_path / "demo" / "archive"
    kinds = {p.relative_to(archive).parts[1] for p in archive.rglob("*") if p.is_file()}
    assert kinds == {
        "session",
        "recording",
        "command_shell",
        "show_my_screen",
        "presentation",
        "backups",
    }
    assert (
        "look around:" in result.stdout
        and f"ls -R {tmp_path / 'demo' / 'archive'}" in result.stdout
    )
    assert (tmp_path / "demo" / "btic-state.db").exists()
    assert oct((tmp_path / "demo" / "sim-client-secret").stat().st_mode & 0o777) == "0o600"
    secret = (tmp_path / "demo" / "sim-client-secret").read_text().strip()
    assert (
        secret not in result.output and secret not in (tmp_path / "demo" / "btic.toml").read_text()
    )
    # the archive's top folder is the demo's site, not the appliance's random port
    assert [p.name for p in archive.iterdir()] == ["sim"]
    # a second demo in the same place: refused without --force, then reuses the archive
    again = run_btic("demo", "--directory", str(tmp_path / "demo"), cwd=tmp_path)
    assert again.returncode == 2 and "btic.toml exists; use --force" in again.stderr
    forced = run_btic("demo", "--directory", str(tmp_path / "demo"), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.output
    assert [p.name for p in archive.iterdir()] == ["sim"]


def test_a_backup_transfer_needs_no_window(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["backup"])
    result = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "archive",
        "--type",
        "backup",
    )
    assert result.returncode == 0, result.output
    [(_, size, sha)] = sim.backups_served
    [backup] = list((tmp_path / "archive").glob("*.nsb"))
    import hashlib

    assert backup.stat().st_size == size and hashlib.sha256(backup.read_bytes()).hexdigest() == sha


def test_no_secret_reaches_the_output_of_a_failing_run(tmp_path):
    with SimulatedAppliance(
        "rs", sessions=4, seed=24, faults="503:50@SupportSessionListing"
    ) as sim:
        config = write_config(tmp_path, sim, data=["session"], extra_site="timeout = 5\n")
        result = run_btic("sync", "--all", "--config", str(config))
    assert result.returncode == 1
    assert "site sim: SupportSessionListing" in result.stderr and "HTTP 503" in result.stderr
    assert sim.client_secret not in result.output


def test_an_unreachable_state_database_is_one_line_and_exit_1(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session"])
    config.write_text(
        '[state]\nurl = "postgresql+psycopg://btic:hunter2@127.0.0.1:9/btic"\n' + config.read_text()
    )
    result = run_btic("sync", "--all", "--config", str(config))
    assert result.returncode == 1
    [line] = [entry for entry in result.stderr.splitlines() if entry.startswith("error:")]
    assert line.startswith(
        "error: state database postgresql+psycopg://btic:***@127.0.0.1:9/btic cannot be opened"
    )
    assert "hunter2" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "archive").exists()


def test_an_appliance_clock_set_back_loses_nothing(tmp_path):
    with SimulatedAppliance(
        "rs", sessions=6, seed=25, live_sessions=0, recording_size=10_000
    ) as sim:
        config = write_config(tmp_path, sim, data=["session"], extra_site='settle_delay = "1s"\n')
        assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
        sim.faults.clock_offset -= 3600  # NTP corrects the appliance by an hour
        now = int(sim.now())
        late = sim.dataset.add_session(now - 600, now - 30)  # ends "before" the watermark
        assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
        names = {p.name for p in (tmp_path / "archive").iterdir()}
        assert f"{host_part(sim)}-support-{late.lsid}.xml" in names
        sim.faults.clock_offset += 120
        newer = sim.dataset.add_session(int(sim.now()) - 300, int(sim.now()) - 20)
        assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
        names = {p.name for p in (tmp_path / "archive").iterdir()}
        assert f"{host_part(sim)}-support-{newer.lsid}.xml" in names
        assert not any(".1." in n for n in names)


def test_a_session_in_progress_is_not_settled_early(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session", "recording"])
    live = next(s for s in sim.dataset.all() if not s.closed_at(sim.now()))
    early = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "archive",
        "--type",
        "session,recording",
        "--lsid",
        live.lsid,
    )
    assert early.returncode == 0, early.output
    assert f"note: session {live.lsid} is still in progress" in early.stderr
    assert not (tmp_path / "archive").exists() or not list((tmp_path / "archive").iterdir())
    assert ledger(tmp_path, "select count(*) from btic_deliveries") == [(0,)]
    sim.faults.clock_offset += live.end - sim.now() + 1  # it ends
    done = run_btic(
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "archive",
        "--type",
        "session,recording",
        "--lsid",
        live.lsid,
    )
    assert done.returncode == 0, done.output
    names = {p.name for p in (tmp_path / "archive").iterdir()}
    assert f"{host_part(sim)}-support-{live.lsid}.xml" in names
    root = etree.fromstring(
        (tmp_path / "archive" / f"{host_part(sim)}-support-{live.lsid}.xml").read_bytes()
    )
    assert root.findtext("{*}end_time")  # the final report, with its end


def test_one_sync_asks_for_one_token_however_many_transfers(sim, tmp_path):
    # The account holds 30 tokens and the 31st logs out the oldest holder.
    config = write_config(tmp_path, sim, data=["session"])
    text = config.read_text()
    for data in ("recording", "command_shell_recording", "backup"):
        text += (
            f'[[schedules.often.transfers]]\nsite = "sim"\ndestinations = ["archive"]\n'
            f'data = ["{data}"]\n'
        )
    text += '[schedules.nightly]\nevery = "1d"\n[[schedules.nightly.transfers]]\nsite = "sim"\n'
    text += 'destinations = ["archive"]\ndata = ["presentation"]\n'
    config.write_text(text)
    before = sim.stats["token"]
    result = run_btic("sync", "--all", "--config", str(config))
    assert result.returncode == 0, result.output
    assert sim.stats["token"] - before == 1


def _age_decrypt(encrypted: Path, output: Path, passphrase: str) -> None:
    """Debian's ``age -d``, which reads a passphrase only from a terminal."""
    import os
    import pty
    import select
    import shutil
    import time

    if shutil.which("age") is None:
        pytest.skip("age is not installed (scripts/setup installs Debian's)")
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes age
        os.execvp("age", ["age", "-d", "-o", str(output), str(encrypted)])
    seen, sent, deadline = b"", False, time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if not sent and b"passphrase" in seen.lower():
            os.write(fd, passphrase.encode() + b"\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen


def test_backups_are_encrypted_at_rest_with_the_backup_password(sim, tmp_path):
    config = write_config(
        tmp_path, sim, data=["backup"], extra_site='backup_password = "env:BACKUP_PASSPHRASE"\n'
    )
    env = {"BACKUP_PASSPHRASE": "correct horse battery staple"}
    result = run_btic("sync", "--all", "--config", str(config), env=env)
    assert result.returncode == 0, result.output
    [delivered] = list((tmp_path / "archive").iterdir())
    assert delivered.name.endswith(".nsb.age")
    sealed = delivered.read_bytes()
    assert sealed.startswith(b"age-encryption.org/v1\n-> scrypt ")
    [(_, size, appliance_sha)] = sim.backups_served
    # the ledger holds what was delivered: the encrypted file
    [(sha256, ledger_size)] = ledger(
        tmp_path, "select sha256, size from btic_deliveries where data_type = 'backup'"
    )
    assert (sha256, ledger_size) == (hashlib.sha256(sealed).hexdigest(), len(sealed))
    # age's own tool gives back the appliance's bytes
    plain = tmp_path / "plain.nsb"
    _age_decrypt(delivered, plain, env["BACKUP_PASSPHRASE"])
    assert hashlib.sha256(plain.read_bytes()).hexdigest() == appliance_sha
    assert plain.stat().st_size == size
    # and so does btic backup decrypt, by reference or with the site's password
    again = run_btic(
        "backup", "decrypt", str(delivered), "--passphrase", "env:BACKUP_PASSPHRASE", env=env
    )
    assert again.returncode == 0, again.output
    assert delivered.with_suffix("").read_bytes() == plain.read_bytes()
    wrong = run_btic(
        "backup", "decrypt", str(delivered), "-o", str(tmp_path / "x"), "--passphrase",
        "env:WRONG", env={"WRONG": "not it"},
    )  # fmt: skip
    assert wrong.returncode == 1 and "cannot decrypt" in wrong.stderr
    assert not (tmp_path / "x").exists()
    by_site = run_btic(
        "backup", "decrypt", str(delivered), "-o", str(tmp_path / "y"), "--site", "sim",
        "--config", str(config), env=env,
    )  # fmt: skip
    assert by_site.returncode == 0, by_site.output
    assert (tmp_path / "y").read_bytes() == plain.read_bytes()


def test_a_command_shell_the_api_lacks_is_reported_with_the_numbering_assumed(sim, tmp_path):
    import re

    two = next(s for s in sim.dataset.all() if s.shell_instances == 2 and s.end < sim.now() - 300)
    saved = tmp_path / "saved.xml"
    saved.write_bytes(b"".join(run_raw_report(sim, [two.lsid])))
    text = saved.read_text()
    # A third command shell the appliance does not have, with no instance= in its URL.
    third = re.search(
        r"<command_shell_recording instance=\"2\">.*?</command_shell_recording>", text, re.S
    )
    assert third is not None, "the report numbers this session's command shells 1 and 2"
    extra = re.sub(r"&amp;instance=\d+", "", third.group(0)).replace('instance="2"', 'instance="3"')
    saved.write_text(text.replace(third.group(0), third.group(0) + extra))
    config = write_config(tmp_path, sim, data=["session"])
    result = run_btic(
        "import-xml", "--config", str(config), str(saved), "--dest", "archive",
        "--type", "command_shell_recording", "--site", "sim",
    )  # fmt: skip
    assert result.returncode == 1
    assert "the report's instance 3, asked for as API instance 2" in result.stderr
    names = sorted(p.name for p in (tmp_path / "archive").iterdir())
    assert names == [
        f"{host_part(sim)}-support-{two.lsid}-shell-1.flv",
        f"{host_part(sim)}-support-{two.lsid}-shell-2.flv",
    ]


def test_pa_command_shells_as_text(tmp_path):
    from btic.sim.data import shell_transcript

    with SimulatedAppliance("pa", sessions=12, seed=17, live_sessions=0) as pa:
        config = write_config(tmp_path, pa, data=["command_shell_recording"])
        config.write_text(config.read_text() + 'command_shell_format = "txt"\n')
        result = run_btic("sync", "--all", "--config", str(config))
        assert result.returncode == 0, result.output
        expected = {
            f"{host_part(pa)}-support-{s.lsid}-shell-{i}.txt": shell_transcript(pa.seed, s.lsid, i)
            for s in pa.dataset.all()
            if s.end < pa.now() - 120
            for i in range(s.shell_instances)
        }
        assert expected
        archive = tmp_path / "archive"
        assert {p.name: p.read_bytes() for p in archive.iterdir()} == expected


def test_command_shell_format_txt_is_refused_for_an_rs_site(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["command_shell_recording"])
    config.write_text(config.read_text() + 'command_shell_format = "txt"\n')
    result = run_btic("check", "--offline", "--config", str(config))
    assert result.returncode == 2
    assert (
        "schedules.often.transfers[0].command_shell_format: site 'sim' is an RS appliance"
        in result.stderr
    )


def test_a_long_disk_full_outage_loses_nothing(tmp_path):
    """Full for longer than any give-up threshold, then freed: everything arrives, once."""
    import subprocess

    from conftest import small_tmpfs

    with small_tmpfs(tmp_path / "tiny", "2m") as tiny:
        filler = tiny / "filler"
        dd = subprocess.run(
            ["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, text=True
        )
        assert "No space left on device" in dd.stderr
        with SimulatedAppliance(
            "rs", sessions=6, seed=71, recording_size=20_000, live_sessions=0
        ) as appliance:
            data = ["session", "recording"]
            config = write_config(
                tmp_path,
                appliance,
                data=data,
                destinations=f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tiny}"\n',
            )
            for _ in range(7):
                full = run_btic("sync", "--all", "--config", str(config))
                assert full.returncode == 1, full.output
                assert "No space left on device" in full.stderr
                assert "given up" not in full.stderr
            filler.unlink()
            freed = run_btic("sync", "--all", "--config", str(config))
            assert freed.returncode == 0, freed.output
            check_archive(tiny, expected_files(appliance, data=data))
            assert "given_up" not in {
                row[0] for row in ledger(tmp_path, "select status from btic_deliveries")
            }


@pytest.mark.parametrize(
    ("room", "arrives"),
    [
        # not even a report fits: nothing arrives until the spool has room
        (0, set()),
        # the reports fit, the 1 MB recordings do not
        (512 * 1024, {".xml"}),
    ],
)
def test_a_full_spool_is_named_with_its_fix_and_loses_nothing(tmp_path, room, arrives):
    """The spool's disk (beside the state database) full: one message naming the
    spool and what to do, exit 1, nothing counted against the items; freed, the next
    run delivers everything once."""
    import subprocess

    from conftest import small_tmpfs

    # Room, once freed, for every recording a run may hold at once (a download slot
    # each, and as many being delivered: 8 of 1 MB), whatever the timing.
    with small_tmpfs(tmp_path / "btic-spool", "16m") as spool:
        spool.chmod(0o700)
        filler = spool / "filler"
        subprocess.run(
            [
                "dd",
                "if=/dev/zero",
                f"of={filler}",
                "bs=64k",
                f"count={(16 * 2**20 - room) // 2**16}",
            ],
            capture_output=True,
            check=True,
        )
        with SimulatedAppliance(
            "rs", sessions=6, seed=71, recording_size=1_000_000, live_sessions=0
        ) as appliance:
            data = ["session", "recording"]
            config = write_config(tmp_path, appliance, data=data)
            full = run_btic("sync", "--all", "--config", str(config))
            assert full.returncode == 1, full.output
            assert f"spool {spool}/" in full.stderr, full.output
            assert "No space left on device; free space on its disk" in full.stderr
            assert "Nothing was lost" in full.stderr
            for wrong in ("OSError", "Traceback", "given up", "failed after", "reachable"):
                assert wrong not in full.output, full.output
            archive = tmp_path / "archive"
            got = {p.suffix for p in archive.iterdir()} if archive.exists() else set()
            assert got == arrives, full.output
            assert (
                ledger(
                    tmp_path,
                    "select status, error from btic_deliveries where data_type = 'recording' "
                    "and status != 'no_recording'",
                )
                == []
            ), "a recording the spool could not take was counted against it"
            assert [p.name for p in spool.iterdir()] == ["filler"] or all(
                not any(d.glob("btic-download-*")) for d in spool.iterdir() if d.is_dir()
            ), "a cut-off download was left in the spool"

            filler.unlink()
            freed = run_btic("sync", "--all", "--config", str(config))
            assert freed.returncode == 0, freed.output
            check_archive(archive, expected_files(appliance, data=data))


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (errno.ENOSPC, "; free space on its disk (it holds each report"),
        (errno.EDQUOT, "; free space on its disk (it holds each report"),
        (errno.EACCES, "; check its disk, and that btic's user may write there."),
        (errno.EIO, "; check its disk, and that btic's user may write there."),
    ],
)
def test_a_spool_that_cannot_be_written_gets_the_fix_for_its_cause(code, fix):
    error = SpoolError.writing(
        Path("/var/lib/btic/btic-spool/1-x"), OSError(code, os.strerror(code))
    )
    assert str(error).startswith(f"spool /var/lib/btic/btic-spool/1-x: {os.strerror(code)}{fix}")
    assert str(error).endswith("Nothing was lost: the items stay pending for the next run")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--since", "1h", "--until", "2h"], "is before --since 1h"),
        (["--since", "2999-01-01T00:00:00Z"], "is in the future"),
        (["--lsid", "x", "--duration", "3"], "--duration goes with --start-date"),
        (["--lsid", "x", "--until", "1h"], "--until goes with --since"),
        (["--start-date", "2024-01-01", "--duration", "-3"], "-3 is not in the range x>=0"),
    ],
)
def test_transfer_refuses_impossible_windows_before_asking_the_appliance(
    tmp_path, options, message
):
    with SimulatedAppliance("rs", sessions=2) as appliance:
        config = write_config(tmp_path, appliance, data=["session"])
        before = dict(appliance.stats)
        result = run_btic(
            "transfer", "--config", str(config), "--site", "sim", "--dest", "archive",
            "--type", "session", *options,
        )  # fmt: skip
        assert dict(appliance.stats) == before, "the appliance was asked"
    assert result.returncode == 2, result.output
    assert message in result.stderr


def test_verify_finds_a_deleted_an_altered_and_an_extra_file(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session", "recording", "command_shell_recording"])
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    intact = run_btic("verify", "--config", str(config))
    assert intact.returncode == 0, intact.output
    assert intact.stdout == ""
    checked = int(
        re.search(
            r"archive: (\d+) items checked; 0 missing, 0 changed, 0 unexpected", intact.stderr
        )[1]
    )
    assert checked == len(
        expected_files(sim, data=["session", "recording", "command_shell_recording"])
    )
    archive = tmp_path / "archive"
    files = sorted(archive.iterdir())
    deleted = next(p for p in files if p.suffix == ".xml")
    altered = next(p for p in files if p.suffix == ".flv")
    deleted.unlink()
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    altered.write_bytes(bytes(data))
    (archive / "planted.flv").write_bytes(b"not from the appliance")
    found = run_btic("verify", "--config", str(config))
    assert found.returncode == 1
    lines = found.stdout.splitlines()
    assert len(lines) == 3, lines
    assert any(line.startswith(f"missing    archive: {deleted}") for line in lines)
    assert any(
        line.startswith(f"changed    archive: {altered}") and "sha256 differs" in line
        for line in lines
    )
    assert any(line.startswith(f"unexpected archive: {archive / 'planted.flv'}") for line in lines)
    assert "1 missing, 1 changed, 1 unexpected" in found.stderr


def test_retention_removals_are_counted_and_verify_knows_them(sim, tmp_path):
    archive = tmp_path / "archive"
    config = write_config(
        tmp_path,
        sim,
        data=["backup"],
        destinations=f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{archive}"\nretention_count = 1\n',
    )
    removed = []
    for _ in range(3):
        synced = run_btic("sync", "--all", "--json", "--config", str(config))
        assert synced.returncode == 0, synced.output
        (row,) = json.loads(synced.stdout)["tallies"]
        removed.append(row["removed"])
        sim.clock.advance(1)  # backups are named by the appliance's second
    assert len(list(archive.iterdir())) == 1
    assert removed == [0, 1, 1]  # counted in the summary, as the files it deleted
    result = run_btic("verify", "--config", str(config))
    assert result.returncode == 0, result.output
    (next(archive.iterdir())).unlink()
    gone = run_btic("verify", "--config", str(config))
    assert gone.returncode == 1 and gone.stdout.count("missing") == 3


def test_the_spool_is_private_beside_the_state_and_cleaned_only_when_provably_abandoned(
    sim, tmp_path
):
    import os
    import subprocess

    spool = tmp_path / "btic-spool"
    spool.mkdir(mode=0o755)
    # a run in another container: its PID means nothing here, but it holds its lock
    alive = spool / "999999-live"
    alive.mkdir()
    holding = (
        "import fcntl, sys, time; f = open(sys.argv[1], 'wb'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        ["python3", "-c", holding, str(alive / ".lock")], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    # a run that died: nobody holds its lock
    dead = spool / "999998-dead"
    dead.mkdir()
    (dead / ".lock").write_bytes(b"")
    (dead / "half.flv").write_bytes(b"x" * 1000)
    try:
        config = write_config(tmp_path, sim, data=["session"])
        assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
        assert alive.exists() and not dead.exists()
        assert oct(spool.stat().st_mode & 0o777) == "0o700"
        assert sorted(p.name for p in spool.iterdir()) == ["999999-live"]  # its own run is gone too
    finally:
        holder.kill()
        holder.wait()
    os.chown(spool, 65534, 65534)
    foreign = run_btic("sync", "--all", "--config", str(config))
    assert foreign.returncode == 1
    assert f"error: spool {spool} belongs to another user (uid 65534)" in foreign.stderr
    assert "Traceback" not in foreign.output


def test_the_summary_counts_what_the_ledger_had_already(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session"])
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    (count,) = ledger(tmp_path, "select count(*) from btic_deliveries")[0]
    window = ["--site", "sim", "--dest", "archive", "--type", "session", "--since", "7d"]
    again = run_btic("transfer", "-v", "--config", str(config), *window)
    assert again.returncode == 0, again.output
    header, row = again.stdout.splitlines()[:2]
    columns = dict(zip(header.split(), row.split(), strict=True))
    assert columns["already"] == str(count)  # (sessions that ended since are delivered)


def test_a_destination_down_as_a_whole_is_reported_once_and_left_alone(sim, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the archive should be")
    config = write_config(
        tmp_path,
        sim,
        data=["session", "recording"],
        destinations=f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{blocker}"\n',
    )
    result = run_btic("sync", "--all", "--config", str(config))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert sum("failed 3 times in a row" in line for line in errors) == 1
    # three items, the line that says so, and at most the recordings already in flight
    # on the download threads (twice download_concurrency = 4) when it was said
    assert len(errors) <= 3 + 1 + 8, errors
    assert len(errors) < len([s for s in sim.dataset.all() if s.report == "support"])
    # the items not offered stay pending: nothing recorded for them, nothing settled
    # ("no_recording" rows are sessions the listing says have no recording: nothing to
    # deliver)
    statuses = {row[0] for row in ledger(tmp_path, "select status from btic_deliveries")}
    assert statuses <= {"failed", "no_recording"}
    (failed,) = ledger(tmp_path, "select count(*) from btic_deliveries where status = 'failed'")[0]
    assert 3 <= failed <= 3 + 8


def test_quiet_verbose_and_json_summaries(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session"])
    as_json = run_btic("sync", "--all", "--json", "--config", str(config))
    assert as_json.returncode == 0, as_json.output
    summary = json.loads(as_json.stdout)
    assert summary["ok"] is True
    [row] = summary["tallies"]
    assert row["destination"] == "archive" and row["data_type"] == "session"
    assert row["delivered"] == len(list((tmp_path / "archive").iterdir()))
    window = ["--site", "sim", "--dest", "archive", "--type", "session", "--since", "7d"]
    quiet = run_btic("transfer", "-q", "--config", str(config), *window)
    assert quiet.returncode == 0 and "event=" not in quiet.output
    assert "archive      session" in quiet.stdout  # -q: errors and the summary
    silent = run_btic("sync", "--all", "--config", str(config))  # cron's case: nothing on success
    assert silent.returncode == 0 and silent.output == ""
    answered = run_btic("transfer", "--config", str(config), *window)  # a person's command
    assert "archive      session" in answered.stdout
    verbose = run_btic("transfer", "-v", "--config", str(config), *window)
    assert "archive      session" in verbose.stdout


def test_import_xml_says_what_it_found_in_local_files(sim, tmp_path):
    config = write_config(tmp_path, sim, data=["session"])
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    archived = next(p for p in (tmp_path / "archive").iterdir() if p.suffix == ".xml")
    empty = tmp_path / "empty.xml"
    empty.write_text('<?xml version="1.0"?><session_list xmlns="x"></session_list>')
    garbage = tmp_path / "notes.xml"
    garbage.write_text("these are my notes, not XML")
    target = tmp_path / "second-archive"
    config.write_text(
        config.read_text()
        + f'\n[destinations.copy]\nplugin = "filesystem"\ndirectory = "{target}"\n'
    )
    command = ["import-xml", "--config", str(config), "--dest", "copy", "--site", "sim"]
    # one <session> document, as the file-system destination archives it, imports
    single = run_btic(*command, str(archived))
    assert single.returncode == 0, single.output
    assert [p.name for p in target.iterdir()] == [archived.name]
    for path, message in ((empty, "holds no <session>"), (garbage, "malformed XML")):
        result = run_btic(*command, str(path))
        assert result.returncode == 1
        assert f"error: {path}: " in result.stderr and message in result.stderr
        assert "from the appliance" not in result.stderr


def test_runs_starting_at_once_never_sweep_each_others_spool(tmp_path):
    """Threads of one worker (or processes) starting runs together: each sweeps the
    spool for abandoned directories while the others are creating theirs."""
    import threading

    from btic.transfer.spool import RunSpool

    parent = tmp_path / "btic-spool"
    spools: list[RunSpool] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def begin() -> None:
        start.wait()
        for _ in range(20):
            spool = RunSpool(parent)
            with lock:
                spools.append(spool)

    threads = [threading.Thread(target=begin) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(spools) == 320
        assert [s.path for s in spools if not s.path.is_dir()] == []
    finally:
        for spool in spools:
            spool.close()
