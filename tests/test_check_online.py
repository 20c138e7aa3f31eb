"""``btic check`` against running simulated appliances, and ``btic sim`` itself."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

from conftest import BTIC, run_btic
from transfer_helpers import host_part

from btic.sim import SimulatedAppliance


def config_for(
    tmp_path: Path, site_section: str, data_nightly=('"backup"',), data_often=('"session"',)
) -> Path:
    path = tmp_path / "btic.toml"
    path.write_text(
        site_section
        + f"""
[destinations.archive]
plugin = "filesystem"
directory = "{tmp_path / "archive"}"

[schedules.often]
every = "15m"
[[schedules.often.transfers]]
site = "sim"
destinations = ["archive"]
data = [{", ".join(data_often)}]

[schedules.nightly]
every = "1d"
[[schedules.nightly.transfers]]
site = "sim"
destinations = ["archive"]
data = [{", ".join(data_nightly)}]
"""
    )
    path.chmod(0o600)
    return path


def test_check_passes_for_a_healthy_site(tmp_path):
    with SimulatedAppliance("rs", sessions=3) as sim:
        section = sim.site_toml("sim", secret_ref="env:SIM_SECRET").replace(
            'product = "rs"', 'product = "auto"'
        )
        result = run_btic(
            "check",
            "--config",
            str(config_for(tmp_path, section)),
            env={"SIM_SECRET": sim.client_secret},
        )
    assert result.returncode == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"ok   site sim: {sim.url} reachable, TLS verified, credentials accepted, "
        "API 1.21.0, product RS (detected from get_api_info)"
    )
    assert re.fullmatch(
        r"ok   site sim: appliance clock \(get_api_info\) is \d+s (ahead of|behind) this machine",
        lines[1],
    )
    assert re.fullmatch(
        rf"ok   destination archive: {tmp_path / 'archive'} writable, [\d.]+ GiB free", lines[2]
    )
    assert lines[-1] == "all checks passed"
    assert [p.name for p in (tmp_path / "archive").iterdir()] == []  # the probe is gone
    assert sim.client_secret not in result.output


def test_check_names_each_missing_permission(tmp_path):
    with SimulatedAppliance(
        "rs", sessions=3, permissions={"perm_backup": "0", "perm_reporting_presentation": "0"}
    ) as sim:
        path = config_for(
            tmp_path, sim.site_toml("sim"), data_nightly=('"backup"', '"presentation"')
        )
        result = run_btic("check", "--config", str(path))
    assert result.returncode == 1
    fails = [entry for entry in result.stdout.splitlines() if entry.startswith("FAIL")]
    assert fails == [
        (
            "FAIL site sim: missing permission perm_backup needed by schedules.nightly.transfers[0] for backup: "
            "allow 'Backup API: Allow Access' for the API account in /login > Management > API Configuration"
        ),
        (
            "FAIL site sim: missing permission perm_reporting_presentation needed by schedules.nightly.transfers[0] "
            "for presentation: allow 'Reporting API: Allow Access to Presentation Session Reports and Recordings' "
            "for the API account in /login > Management > API Configuration"
        ),
    ]
    assert "check failed" in result.stderr


def test_check_reports_a_wrong_secret_in_one_line(tmp_path):
    with SimulatedAppliance("rs", sessions=1) as sim:
        section = sim.site_toml("sim").replace(sim.client_secret, "not-the-secret")
        result = run_btic("check", "--config", str(config_for(tmp_path, section)))
    assert result.returncode == 1
    assert [entry for entry in result.stdout.splitlines() if entry.startswith("FAIL")] == [
        (
            "FAIL site sim: the appliance refused the client ID and secret (HTTP 401 invalid_client); check "
            "sites.sim.client_id and client_secret against /login > Management > API Configuration"
        )
    ]


def test_check_reports_an_untrusted_certificate(tmp_path):
    with SimulatedAppliance("rs", sessions=1) as sim:
        section = (
            "\n".join(
                entry
                for entry in sim.site_toml("sim").splitlines()
                if not entry.startswith("ca_bundle")
            )
            + "\n"
        )
        result = run_btic("check", "--config", str(config_for(tmp_path, section)))
    assert result.returncode == 1
    assert "FAIL site sim: TLS certificate of" in result.stdout
    assert "set sites.sim.ca_bundle to the CA that signed it" in result.stdout


def test_check_reports_an_unreachable_site(tmp_path):
    sim = SimulatedAppliance("rs", sessions=1, tls=False)  # never started: nothing listens
    section = sim.site_toml("sim").replace(":0", ":9")
    result = run_btic("check", "--config", str(config_for(tmp_path, section)))
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL site sim: token failed after 2 tries: ConnectError")
    assert "check that http://127.0.0.1:9 is reachable" in result.stdout
    assert "warning: sites.sim.scheme is http" in result.stderr


def test_check_warns_about_clock_skew_but_passes(tmp_path):
    with SimulatedAppliance("rs", sessions=1, faults="clock=-3600") as sim:
        result = run_btic("check", "--config", str(config_for(tmp_path, sim.site_toml("sim"))))
    assert result.returncode == 0, result.output
    assert re.search(
        r"^warn site sim: appliance clock \(get_api_info\) is 36\d\ds behind this machine; btic uses the "
        r"appliance's clock",
        result.stdout,
        re.M,
    )


def test_check_refuses_data_the_detected_product_lacks(tmp_path):
    with SimulatedAppliance("pa", sessions=2) as sim:
        section = sim.site_toml("sim").replace('product = "pa"', 'product = "auto"')
        path = config_for(tmp_path, section, data_nightly=('"show_my_screen_recording"',))
        result = run_btic("check", "--config", str(path))
    assert result.returncode == 1
    assert "product PA (detected from get_api_info)" in result.stdout
    assert (
        "FAIL site sim: schedules.nightly.transfers[0] asks for show_my_screen_recording, which a PA "
        "appliance does not have"
    ) in result.stdout


def test_btic_sim_serves_until_terminated(tmp_path):
    proc = subprocess.Popen(
        [
            BTIC,
            "sim",
            "--product",
            "pa",
            "--sessions",
            "4",
            "--state-dir",
            str(tmp_path / "sim"),
            "--client-secret",
            "fixed-secret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = []
        for line in proc.stdout:
            banner.append(line)
            if line.startswith("(Ctrl-C"):
                break
        text = "".join(banner)
        assert text.startswith("simulated PA appliance at https://127.0.0.1:")
        assert "client secret: fixed-secret" in text
        assert f'ca_bundle = "{tmp_path / "sim" / "ca.pem"}"' in text
        section = text[text.index("[sites.sim]") : text.index("(Ctrl-C")]
        result = run_btic("check", "--config", str(config_for(tmp_path, section)))
        assert result.returncode == 0, result.output
        assert "product PA" in result.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_btic_sim_rejects_an_unreadable_fault_spec():
    result = run_btic("sim", "--faults", "explode:2")
    assert result.returncode == 2
    assert "cannot read fault 'explode:2'" in result.stderr


def test_check_reports_a_destination_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "archive"
    blocker.write_text("a file where the directory should be")
    with SimulatedAppliance("rs", sessions=1) as sim:
        result = run_btic("check", "--config", str(config_for(tmp_path, sim.site_toml("sim"))))
    assert result.returncode == 1
    assert (
        f"FAIL destination archive: {blocker}: cannot create the destination directory"
        in result.stdout
    )


def test_an_account_without_the_command_api_checks_and_syncs(tmp_path):
    """The vendor's prerequisites are reporting and backup permissions only."""
    with SimulatedAppliance(
        "rs", sessions=6, seed=41, live_sessions=0, permissions={"perm_command": "deny"}
    ) as sim:
        section = sim.site_toml("sim").replace('product = "rs"', 'product = "auto"')
        path = config_for(tmp_path, section)
        check = run_btic("check", "--config", str(path))
        assert check.returncode == 0, check.output
        lines = check.stdout.splitlines()
        assert lines[0] == (
            f"ok   site sim: {sim.url} reachable, TLS verified, credentials accepted, "
            "product RS (detected from the reports)"
        )
        assert lines[1].startswith(
            "ok   site sim: note: the API account may not use the Command API"
        )
        assert (
            "note: perm_backup (for backup) is not checked without the Command API" in check.stdout
        )
        assert re.search(r"appliance clock \(the HTTP Date header\) is \d+s", check.stdout)
        assert sim.stats["command"] >= 1  # asked, refused, and nothing failed
        sync = run_btic("sync", "--all", "--config", str(path))
        assert sync.returncode == 0, sync.output
        archived = {p.name for p in (tmp_path / "archive").iterdir()}
        recent = [s for s in sim.dataset.all() if sim.now() - 86400 < s.end < sim.now() - 180]
        assert recent
        assert {f"{host_part(sim)}-support-{s.lsid}.xml" for s in recent} <= archived
        assert any(name.endswith(".nsb") for name in archived)


def test_without_the_command_api_a_missing_report_permission_still_fails_check(tmp_path):
    with SimulatedAppliance(
        "rs",
        sessions=2,
        permissions={"perm_command": "deny", "perm_reporting_support": "0"},
    ) as sim:
        path = config_for(tmp_path, sim.site_toml("sim"))
        result = run_btic("check", "--config", str(path))
    assert result.returncode == 1
    assert (
        "FAIL site sim: missing permission perm_reporting_support needed by "
        "schedules.often.transfers[0] for session" in result.stdout
    )


def test_a_skewed_appliance_without_the_command_api_is_measured_by_its_date_header(tmp_path):
    with SimulatedAppliance(
        "rs", sessions=2, faults="clock=-3600", permissions={"perm_command": "deny"}
    ) as sim:
        result = run_btic("check", "--config", str(config_for(tmp_path, sim.site_toml("sim"))))
    assert result.returncode == 0, result.output
    assert re.search(
        r"warn site sim: appliance clock \(the HTTP Date header\) is 36\d\ds behind", result.stdout
    )


def test_check_one_destination_and_say_when_a_plugin_cannot_be_tested(tmp_path, distributions):
    from conftest import VALID_PLUGIN

    site = distributions.make(
        "btic-untested", "1.0", {"untested": "untested_mod:Destination"},
        {"untested_mod": VALID_PLUGIN},
    )  # fmt: skip
    with SimulatedAppliance("rs", sessions=2) as sim:
        path = config_for(tmp_path, sim.site_toml("sim"))
        path.write_text(path.read_text() + '\n[destinations.reports]\nplugin = "untested"\n')
        only_archive = run_btic(
            "check", "--config", str(path), "--dest", "archive", pythonpath=[site]
        )
        untested = run_btic("check", "--config", str(path), "--dest", "reports", pythonpath=[site])
        unknown = run_btic("check", "--config", str(path), "--dest", "nope", pythonpath=[site])
    assert only_archive.returncode == 0, only_archive.output
    assert [line.split(":")[0] for line in only_archive.stdout.splitlines()[:-1]] == [
        "ok   destination archive"
    ]
    assert untested.stdout.startswith(
        "warn destination reports: not tested: plugin untested has no on_check"
    ), untested.output
    assert unknown.returncode == 2 and "no destination named 'nope'" in unknown.stderr
