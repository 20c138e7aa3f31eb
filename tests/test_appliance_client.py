"""The API client against the simulated appliance, over real TLS sockets."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from conftest import connect

from btic.appliance.reports import DateWindow, Window, utc
from btic.errors import (
    ApplianceUnreachable,
    AuthenticationError,
    PermissionDenied,
    RecordingExpired,
    ReportError,
    TlsVerificationError,
)
from btic.sim import SimulatedAppliance
from btic.testing.servers import free_port

DAYS = 86400


def closed(sim, report="support"):
    now = sim.now()
    return [s for s in sim.dataset.all() if s.report == report and s.closed_at(now)]


def test_every_rs_report_type(rs_sim, tmp_path):
    with connect(rs_sim) as client:
        since = utc(rs_sim.now() - 3 * DAYS)
        listing = client.list_sessions("support", Window("end", since))
        assert [e.lsid for e in listing] == [s.lsid for s in closed(rs_sim)]
        first = next(
            s for s in closed(rs_sim) if s.shell_instances and s.sms_instances and s.has_recording
        )
        entry = next(e for e in listing if e.lsid == first.lsid)
        assert (
            entry.has_recording
            and entry.lseq == first.lseq
            and entry.external_key == first.external_key
        )
        [(session, xml)] = client.iter_sessions("support", lsids=[first.lsid])
        assert (
            session.lsid == first.lsid and session.product == "rs" and session.report == "support"
        )
        assert session.end_time == utc(first.end)
        assert xml.startswith(b"<?xml") and first.lsid.encode() in xml
        # command shell: the report numbers from 1, the download URL (and API) from 0
        assert [link.instance for link in session.command_shell_recordings] == list(
            range(1, first.shell_instances + 1)
        )
        assert session.command_shell_recordings[0].download_url.endswith("instance=0")
        for kind, instance in first.recordings():
            download = client.download_recording(kind, first.lsid, instance, tmp_path)
            assert download.sha256 == rs_sim.recording_sha256(first.lsid, kind, instance)
            assert (
                download.size
                == download.path.stat().st_size
                == rs_sim.dataset.recording_size_of(kind)
            )
            assert download.extension == "flv"
        presentations = client.list_sessions("presentation", Window("end", since))
        assert presentations and [e.lsid for e in presentations] == [
            s.lsid for s in closed(rs_sim, "presentation")
        ]
        [(talk, _)] = client.iter_sessions("presentation", lsids=[presentations[0].lsid])
        assert (
            talk.report == "presentation"
            and talk.session_type == "presentation"
            and len(talk.customers) == 2
        )
        download = client.download_recording("presentation", talk.lsid, None, tmp_path)
        assert download.sha256 == rs_sim.recording_sha256(talk.lsid, "presentation")
        backup = client.download_backup(tmp_path)
        assert backup.extension == "nsb" and backup.sha256 == rs_sim.backups_served[-1][2]


def test_every_pa_report_type(pa_sim, tmp_path):
    with connect(pa_sim) as client:
        assert client.product == "pa"  # detected: the site says auto
        listing = client.list_sessions("access", Window("end", utc(pa_sim.now() - 3 * DAYS)))
        assert [e.lsid for e in listing] == [s.lsid for s in closed(pa_sim, "access")]
        with_shell = next(
            s for s in closed(pa_sim, "access") if s.shell_instances and s.has_recording
        )
        [(session, xml)] = client.iter_sessions("access", lsids=[with_shell.lsid])
        assert (
            session.product == "pa" and session.jump_group is not None and session.jump_group.type
        )
        assert b"https://www.bomgar.com/namespaces/API/reporting" in xml
        for kind, instance in with_shell.recordings():
            download = client.download_recording(kind, with_shell.lsid, instance, tmp_path)
            assert download.sha256 == pa_sim.recording_sha256(with_shell.lsid, kind, instance)
        assert client.download_backup(tmp_path).size == pa_sim.dataset.backup_size


def test_windows_by_time_are_inclusive_and_end_windows_skip_sessions_in_progress(rs_sim):
    target = closed(rs_sim)[5]
    with connect(rs_sim) as client:
        exact_end = client.list_sessions("support", Window("end", utc(target.end), utc(target.end)))
        assert [e.lsid for e in exact_end] == [target.lsid]
        ending_at = client.list_sessions(
            "support", Window("end", utc(target.end - 100), utc(target.end))
        )
        assert target.lsid in [e.lsid for e in ending_at]
        started = [
            s
            for s, _ in client.iter_sessions(
                "support", window=Window("start", utc(rs_sim.now() - 3600))
            )
        ]
        live = [s for s in started if s.end_time is None]
        assert live, "start windows include sessions in progress"
        ended = client.list_sessions("support", Window("end", utc(rs_sim.now() - 3600)))
        assert not {s.lsid for s in live} & {e.lsid for e in ended}


def test_windows_by_date(rs_sim):
    day = datetime.fromtimestamp(closed(rs_sim)[0].end, timezone.utc).date()
    expected = [
        s.lsid for s in closed(rs_sim) if datetime.fromtimestamp(s.end, timezone.utc).date() == day
    ]
    with connect(rs_sim) as client:
        one_day = client.list_sessions("support", DateWindow("end", day, 1))
        assert [e.lsid for e in one_day] == expected
        to_now = client.list_sessions("support", DateWindow("end", day, 0))
        assert len(to_now) == len(closed(rs_sim))
        sessions = list(client.iter_sessions("support", window=DateWindow("start", day, 1)))
        assert all(s.start_time.date() == day for s, _ in sessions)


def test_lsids_go_in_one_batch(rs_sim):
    lsids = [s.lsid for s in closed(rs_sim)[:12]]
    with connect(rs_sim) as client:
        got = [s.lsid for s, _ in client.iter_sessions("support", lsids=lsids)]
        assert sorted(got) == sorted(lsids)
        assert client.requests["SupportSession"] == 1


def test_one_token_serves_a_whole_run(tmp_path):
    with SimulatedAppliance("rs", sessions=10, seed=3, recording_size=10_000) as sim:
        with connect(sim) as client:
            client.api_info()
            listing = client.list_sessions("support", Window("end", utc(sim.now() - 3 * DAYS)))
            for entry in listing:
                list(client.iter_sessions("support", lsids=[entry.lsid]))
                if entry.has_recording:
                    client.download_recording("session", entry.lsid, None, tmp_path)
            client.download_backup(tmp_path)
        assert sim.tokens.grants == 1
        assert sim.stats["SupportSession"] == len(listing)


def test_a_401_mid_run_refreshes_exactly_once():
    with SimulatedAppliance("rs", sessions=5, seed=4) as sim, connect(sim) as client:
        client.api_info()
        sim.revoke_tokens()  # e.g. the client secret was regenerated, or the 31st token
        assert client.api_info(refresh=True).api_version == "1.21.0"
        assert sim.tokens.grants == 2
        sim.faults.add("revoke", count=5)  # every token dies at once, again and again
        with pytest.raises(
            AuthenticationError,
            match="site sim: get_api_info: the appliance refused a fresh token",
        ):
            client.api_info(refresh=True)
        assert sim.tokens.grants == 3  # one refresh for the call, not a loop


def test_keep_alive_off_closes_every_connection():
    with SimulatedAppliance("rs", sessions=5, seed=5) as sim:
        with connect(sim) as client:
            for _ in range(4):
                client.api_info(refresh=True)
        assert sim.stats["connections"] == 5  # token + 4 calls
        before = sim.stats["connections"]
        with connect(sim, keep_alive=True) as client:
            for _ in range(4):
                client.api_info(refresh=True)
        assert sim.stats["connections"] - before == 1


@pytest.mark.parametrize(
    ("fault", "target"),
    [
        ("500:2", "SupportSessionListing"),
        ("503:1", "SupportSessionListing"),
        ("429:2", "SupportSessionListing"),
        ("reset:1", "SupportSessionListing"),
        ("truncate:2", "SupportSessionListing"),
        ("500:1", "token"),
        ("reset:1", "SupportSessionRecording"),
        ("truncate:1", "SupportSessionRecording"),
        ("502:2", "backup"),
        ("reset:1", "backup"),
    ],
)
def test_each_fault_is_recovered_within_the_retry_budget(fault, target, tmp_path):
    kind, _, count = fault.partition(":")
    waits: list[float] = []
    with SimulatedAppliance(
        "rs", sessions=6, seed=9, recording_size=400_000, faults="retry_after=7"
    ) as sim:
        sim.faults.add(kind, int(count), target)
        with connect(sim, retries=3, sleep=waits.append) as client:
            listing = client.list_sessions("support", Window("end", utc(sim.now() - 3 * DAYS)))
            assert [e.lsid for e in listing] == [s.lsid for s in closed(sim)]
            entry = next(e for e in listing if e.has_recording)
            download = client.download_recording("session", entry.lsid, None, tmp_path)
            assert download.sha256 == sim.recording_sha256(entry.lsid, "session")
            assert client.download_backup(tmp_path).sha256 == sim.backups_served[-1][2]
        assert sim.faults.pending() == 0
        assert len(waits) == int(count)
        if kind == "429":
            assert all(w >= 7 for w in waits)  # Retry-After honoured
        assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".part") == sorted(
            p.name for p in tmp_path.iterdir()
        )  # only the two complete downloads
        assert len(list(tmp_path.iterdir())) == 2


def test_a_fault_beyond_the_budget_fails_naming_site_and_report(tmp_path):
    with (
        SimulatedAppliance("rs", sessions=3, seed=10, faults="503:20@SupportSessionListing") as sim,
        connect(sim, name="london", retries=2) as client,
    ):
        with pytest.raises(ApplianceUnreachable) as info:
            client.list_sessions("support", Window("end", utc(1_700_000_000), utc(1_700_003_600)))
    message = str(info.value)
    assert message.startswith(
        "site london: SupportSessionListing end_time=1700000000 duration=3600 failed after 3 tries"
    )
    assert "HTTP 503" in message


def test_a_truncated_recording_never_yields_a_file(tmp_path):
    with SimulatedAppliance(
        "rs", sessions=4, seed=11, recording_size=1_000_000, faults="truncate:9@recording"
    ) as sim:
        lsid = next(s.lsid for s in closed(sim) if s.has_recording)
        with (
            connect(sim, retries=2) as client,
            pytest.raises(ApplianceUnreachable, match="received 500000 bytes, expected 1000000"),
        ):
            client.download_recording("session", lsid, None, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_expired_recording_is_reported_as_such(tmp_path):
    with SimulatedAppliance("rs", sessions=8, seed=12, expired_every=2) as sim:
        expired = next(s for s in closed(sim) if s.recording_expired and s.has_recording)
        with connect(sim) as client:
            with pytest.raises(RecordingExpired, match="has expired and can no longer be viewed"):
                client.download_recording("session", expired.lsid, None, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_wrong_secret_is_one_clear_message():
    with SimulatedAppliance("rs", sessions=2, seed=13) as sim:
        with connect(sim, name="london", secret="wrong") as client:
            with pytest.raises(AuthenticationError) as info:
                client.api_info()
    assert str(info.value) == (
        "site london: the appliance refused the client ID and secret (HTTP 401 invalid_client); check "
        "sites.london.client_id and client_secret against /login > Management > API Configuration"
    )


def test_missing_backup_permission(tmp_path):
    with SimulatedAppliance("rs", sessions=2, seed=14, permissions={"perm_backup": "0"}) as sim:
        with connect(sim) as client:
            assert not client.api_info().allows("perm_backup")
            with pytest.raises(PermissionDenied, match="site sim: backup: HTTP 404"):
                client.download_backup(tmp_path)


def test_an_untrusted_certificate_is_not_retried():
    with SimulatedAppliance("rs", sessions=2, seed=15) as sim:
        with connect(sim, ca=False) as client:
            with pytest.raises(TlsVerificationError, match=r"set sites\.sim\.ca_bundle"):
                client.api_info()
        assert sim.tokens.grants == 0


def test_an_unreachable_appliance():
    sim = SimulatedAppliance("rs", sessions=1, tls=False, port=free_port())  # never started
    with (
        connect(sim, name="dc2", retries=1) as client,
        pytest.raises(
            ApplianceUnreachable, match="site dc2: token failed after 2 tries: ConnectError"
        ),
    ):
        client.api_info()


def test_the_appliance_clock_comes_from_get_api_info():
    with SimulatedAppliance("rs", sessions=2, seed=16, faults="clock=-3600") as sim:
        with connect(sim) as client:
            offset = client.appliance_now() - datetime.now(timezone.utc)
    assert timedelta(seconds=-3605) < offset < timedelta(seconds=-3595)


def test_bad_parameters_are_errors_with_the_appliance_text(rs_sim):
    with connect(rs_sim) as client, pytest.raises(ReportError, match="Invalid duration"):
        list(client.iter_sessions("support", window=_BadWindow()))


class _BadWindow(Window):
    def __init__(self):
        super().__init__("end", utc(0))

    def params(self):
        return {"end_time": "0", "duration": "-1"}


def test_no_matching_data_is_an_empty_result_in_other_languages():
    for language in ("de", "fr", "ja"):
        with SimulatedAppliance("rs", sessions=2, seed=17, language=language) as sim:
            with connect(sim) as client:
                assert client.list_sessions("support", Window("end", utc(sim.now() + 999))) == []
                assert list(client.iter_sessions("support", lsids=["nope"])) == []


def test_sessions_keep_ending_while_the_simulator_runs():
    with SimulatedAppliance("rs", sessions=4, seed=18, live_sessions=2, live_interval=30) as sim:
        with connect(sim) as client:
            window = Window("end", utc(sim.now() - 3 * DAYS))
            before = {e.lsid for e in client.list_sessions("support", window)}
            sim.faults.clock_offset += 61  # a minute passes on the appliance
            after = {e.lsid for e in client.list_sessions("support", window)}
    assert before < after and len(after - before) == 2


# get_api_info as the PA guide's element table names it (/get_api_info/permissions/
# permission), in a namespace, with the permissions it lists.
GUIDE_API_INFO = b"""<?xml version="1.0" encoding="UTF-8"?>
<get_api_info xmlns="http://www.beyondtrust.com/namespaces/API/command">
  <api_version>1.16.0</api_version>
  <timestamp>1790000000</timestamp>
  <permissions>
    <permission name="perm_backup">1</permission>
    <permission name="perm_command">read_only</permission>
    <permission name="perm_reporting">1</permission>
  </permissions>
</get_api_info>"""


def test_get_api_info_as_the_guide_describes_it():
    from btic.appliance.parse import parse_document
    from btic.appliance.site import read_api_info

    info = read_api_info(parse_document(GUIDE_API_INFO), "pa1")
    assert info.timestamp == datetime(2026, 9, 21, 14, 13, 20, tzinfo=timezone.utc)
    assert info.api_version == "1.16.0"
    assert info.product == "pa"  # perm_reporting without perm_reporting_support
    assert info.allows("perm_backup") and info.allows("perm_command")
    assert not info.allows("perm_reporting_archive")


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        ("", "site pa1: get_api_info answered without a <timestamp>"),
        ("<timestamp>soon</timestamp>", "a <timestamp> that is not a time: 'soon'"),
        ("<timestamp>99999999999999999999</timestamp>", "is not a time"),
    ],
)
def test_get_api_info_without_a_readable_clock_says_so(timestamp, message):
    from btic.appliance.parse import parse_document
    from btic.appliance.site import read_api_info

    document = f"<get_api_info><api_version>1</api_version>{timestamp}</get_api_info>"
    with pytest.raises(ReportError, match=re.escape(message)):
        read_api_info(parse_document(document.encode()), "pa1")
