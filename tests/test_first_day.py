"""An administrator's first day: the starter configuration, read-only commands,
wrong secrets, busy ports, narrow terminals, what the words mean, --json."""

from __future__ import annotations

import io
import json
import socket
import sqlite3
import stat
from pathlib import Path

import pytest
from conftest import run_btic
from transfer_helpers import write_config

from btic.sim import SimulatedAppliance

SECRET_ENV = "BTIC_SUPPORT_SECRET"


def _starter_for(sim: SimulatedAppliance, tmp_path: Path) -> Path:
    """``btic init``'s starter, pointed at ``sim`` and nothing else changed."""
    path = tmp_path / "btic.toml"
    made = run_btic("init", str(path))
    assert made.returncode == 0, made.output
    text = path.read_text()
    text = text.replace('host = "support.example.com"', f'host = "{sim.host}"')
    text = text.replace(
        'client_id = "replace-with-the-api-account-client-id"',
        f'client_id = "{sim.client_id}"\nca_bundle = "{sim.ca_path}"\nfirst_run_since = "all"',
    )
    path.write_text(text)
    return path


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_the_starter_is_quiet_on_success_and_keeps_evidence_private(tmp_path):
    with SimulatedAppliance("rs", sessions=4, seed=71, live_sessions=0) as sim:
        config = _starter_for(sim, tmp_path)
        env = {SECRET_ENV: sim.client_secret}
        synced = run_btic("sync", "--all", "--config", str(config), env=env)
        # cron mails whatever a job prints: a run that went well prints nothing
        assert synced.returncode == 0, synced.output
        assert (synced.stdout, synced.stderr) == ("", "")
        told = run_btic("sync", "--all", "-v", "--config", str(config), env=env)
        assert told.returncode == 0 and "destination" in told.stdout
    archive = tmp_path / "beyondtrust-archive"
    written = list(archive.rglob("*"))
    assert any(p.suffix == ".xml" for p in written) and any(p.suffix == ".nsb" for p in written)
    for path in [archive, *written]:
        assert _mode(path) == ("0o750" if path.is_dir() else "0o640"), path
    assert _mode(tmp_path / "btic-state.db") == "0o600"
    logs = list((tmp_path / "logs").glob("*.jsonl"))
    assert logs and all(_mode(log) == "0o600" for log in logs)
    assert _mode(tmp_path / "logs") == "0o700"


def test_a_group_and_modes_are_given_to_what_is_written(tmp_path, rs_sim):
    import grp
    import os

    group = grp.getgrgid(os.getgid()).gr_name
    config = write_config(
        tmp_path,
        rs_sim,
        data=["session"],
        destinations=(
            f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{tmp_path / "a"}"\n'
            'file_name_format = "%YEAR%/%LSID%.%EXTENSION%"\n'
            f'file_mode = "0600"\ndirectory_mode = "0700"\ngroup = "{group}"\n'
        ),
    )
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    written = list((tmp_path / "a").rglob("*"))
    assert any(p.is_dir() for p in written) and any(p.is_file() for p in written)
    for path in written:
        assert _mode(path) == ("0o700" if path.is_dir() else "0o600"), path
        assert path.stat().st_gid == os.getgid()
    loose = config.read_text().replace('file_mode = "0600"', 'file_mode = "0644"')
    config.write_text(loose.replace(f'group = "{group}"', 'group = "no-such-group-here"'))
    checked = run_btic("check", "--offline", "--config", str(config))
    assert checked.returncode == 2
    assert (
        "warning: destinations.archive: file_mode = '0644' lets every user of the machine read"
        in checked.stderr
    )
    assert "group: no group 'no-such-group-here' on this machine" in checked.stderr


def test_read_only_commands_run_without_the_appliance_secret(tmp_path):
    with SimulatedAppliance("rs", sessions=3, seed=73, live_sessions=0) as sim:
        config = write_config(tmp_path, sim, data=["session"])
        config.write_text(config.read_text().replace(sim.client_secret, f"env:{SECRET_ENV}"))
        env = {SECRET_ENV: sim.client_secret}
        assert run_btic("sync", "--all", "--config", str(config), env=env).returncode == 0
        for command in (["status"], ["verify"], ["retry"], ["status", "--json"]):
            result = run_btic(*command, "--config", str(config))
            assert result.returncode == 0, (command, result.output)
        missing = f"sites.sim.client_secret: environment variable {SECRET_ENV} is not set"
        offline = run_btic("check", "--offline", "--json", "--config", str(config))
        assert offline.returncode == 2
        document = json.loads(offline.stdout)
        assert document["ok"] is False and missing in document["problems"][0]
        assert f"error: {missing}" in offline.stderr
        # a command that talks to the appliance still needs it, and says so at once
        sync = run_btic("sync", "--all", "--config", str(config))
        assert sync.returncode == 2 and f"error: {missing}" in sync.stderr


def test_a_wrong_secret_says_the_schedule_did_not_run(tmp_path, rs_sim):
    config = write_config(tmp_path, rs_sim, data=["session"])
    config.write_text(config.read_text().replace(rs_sim.client_secret, "wrong"))
    result = run_btic("sync", "--all", "--config", str(config))
    assert result.returncode == 1
    assert "refused the client ID and secret" in result.stderr
    assert "schedule often: did not run: no site of it could be read" in result.stderr
    assert ": ran" not in result.stderr
    assert result.stdout == ""  # no table of nothing


def test_the_simulator_on_a_port_in_use_says_so_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_btic("sim", "--port", str(port))
    assert result.returncode == 2
    expected = (
        f"error: --port {port}: cannot listen on 127.0.0.1:{port} (Address already in use); "
        "choose another port, or 0 for a free one"
    )
    assert result.stderr.strip().splitlines() == [expected]


@pytest.mark.parametrize("width", [80, 60])
def test_the_summary_never_cuts_a_figure_on_a_narrow_terminal(width):
    from rich.console import Console

    from btic.progress import print_summary
    from btic.transfer import Summary

    summary = Summary()
    for _ in range(1234):
        summary.count("long-archive-name", "command_shell_recording", "delivered", 524_288_000)
    summary.already("long-archive-name", "command_shell_recording", 98_765)
    summary.count("reports", "session", "failed")
    out = io.StringIO()
    print_summary(Console(file=out, width=width), summary)
    text = out.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    assert "1,234 delivered" in text and "98,765 already" in text
    assert "646,971,392,000 bytes" in text and "reports session: 1 failed" in text
    wide = io.StringIO()
    print_summary(Console(file=wide, width=200), summary)
    assert "transfer summary" in wide.getvalue() and "646,971,392,000" in wide.getvalue()


def test_sessions_without_a_recording_are_not_called_skipped(tmp_path, rs_sim):
    config = write_config(tmp_path, rs_sim, data=["recording"])
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    with sqlite3.connect(tmp_path / "btic-state.db") as db:
        statuses = dict(db.execute("select status, count(*) from btic_deliveries group by status"))
    assert statuses.get("no_recording", 0) > 0 and "skipped" not in statuses
    status = run_btic("status", "--config", str(config))
    assert f"{statuses['no_recording']} without a recording" in status.stdout
    assert "skipped" not in status.stdout


def test_reimporting_a_file_counts_what_the_archive_has(tmp_path, rs_sim):
    from hostile import report, session_xml

    config = write_config(tmp_path, rs_sim, data=["session"])
    saved = tmp_path / "saved.xml"
    saved.write_bytes(report(*(session_xml(lsid) for lsid in ("a", "b", "c"))))
    command = ["import-xml", "--config", str(config), str(saved), "--dest", "archive"]
    first = run_btic(*command, "--host", "old.example.com", "--json")
    again = run_btic(*command, "--host", "old.example.com", "--json")
    text = run_btic(*command, "--host", "old.example.com")
    assert first.returncode == again.returncode == text.returncode == 0, again.output
    [tally] = json.loads(again.stdout)["tallies"]
    assert (tally["delivered"], tally["already"]) == (0, 3)
    header, row = text.stdout.splitlines()
    assert dict(zip(header.split(), row.split(), strict=True)) == {
        "destination": "archive",
        "type": "session",
        "delivered": "0",
        "skipped": "0",
        "expired": "0",
        "failed": "0",
        "already": "3",
        "removed": "0",
        "bytes": "0",
    }


def test_the_readme_names_every_option_of_import_xml():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    [line] = [row for row in readme.splitlines() if row.startswith("| `btic import-xml")]
    helped = run_btic("import-xml", "--help").stdout
    for option in ("--dest", "--site", "--host", "--type", "--product", "--force"):
        assert option in helped and option in line, option


def test_json_is_one_document_on_stdout_even_when_the_command_fails(tmp_path, rs_sim):
    config = write_config(tmp_path, rs_sim, data=["session"])
    good = config.read_text()
    config.write_text(good.replace('plugin = "filesystem"', 'plugin = "nowhere"'))
    for command in (
        ["check", "--offline", "--json"],
        ["status", "--json"],
        ["verify", "--json"],
        ["sync", "--all", "--json"],
    ):
        result = run_btic(*command, "--config", str(config))
        assert result.returncode == 2, (command, result.output)
        document = json.loads(result.stdout)
        assert document["ok"] is False, command
        assert any("destinations.archive.plugin" in p for p in document["problems"]), command
    # a destination that fails: status says so in its exit code and its document
    config.write_text(good)
    (tmp_path / "archive").write_text("a file where the directory should be")
    failed = run_btic("sync", "--all", "--json", "--config", str(config))
    assert failed.returncode == 1 and json.loads(failed.stdout)["ok"] is False
    status = run_btic("status", "--json", "--config", str(config))
    assert status.returncode == 1 and json.loads(status.stdout)["ok"] is False
    text = run_btic("status", "--config", str(config))
    assert text.returncode == 1 and "failing:" in text.stdout
    (tmp_path / "archive").unlink()
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    verified = run_btic("verify", "--json", "--config", str(config))
    assert verified.returncode == 0, verified.output
    document = json.loads(verified.stdout)
    assert document["ok"] is True and document["destinations"][0]["checked"] > 0
    next(p for p in (tmp_path / "archive").iterdir()).write_text("changed")
    changed = run_btic("verify", "--json", "--config", str(config))
    assert changed.returncode == 1
    assert [f["kind"] for f in json.loads(changed.stdout)["findings"]] == ["changed"]
