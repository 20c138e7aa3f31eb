"""btic against a broken or hostile appliance: one bad item never stops the rest."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_btic
from hostile import Answer, HostileAppliance, listing, report, session_xml


def _config(tmp_path: Path, appliance: HostileAppliance, state: str | None = None) -> Path:
    path = tmp_path / "btic.toml"
    text = appliance.config(tmp_path / "archive")
    if state is not None:
        text = f'[state]\nurl = "{state}"\n' + text
    path.write_text(text)
    path.chmod(0o600)
    return path


def _statuses(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "btic-state.db") as connection:
        return dict(connection.execute("select item_key, status from btic_deliveries"))


def _archived(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "archive").iterdir())


@pytest.mark.parametrize(
    "bad_end",
    [
        'timestamp="1000000000000000">',
        'timestamp="-99999999999999999">',
        'timestamp="soon">not a time',
    ],
    ids=["huge", "negative", "text"],
)
def test_an_unreadable_session_fails_alone(tmp_path, bad_end):
    with HostileAppliance() as appliance:
        appliance.routes["SupportSessionListing"] = lambda _p: Answer(body=listing("a", "b", "c"))
        appliance.routes["SupportSession"] = lambda _p: Answer(
            body=report(
                session_xml("a"),
                session_xml("b").replace(
                    'timestamp="1700000000">2023-11-14T22:13:20+00:00', bad_end
                ),
                session_xml("c"),
            )
        )
        config = _config(tmp_path, appliance)
        first = run_btic("sync", "--all", "--config", str(config))
        second = run_btic("sync", "--all", "--config", str(config))
    for result in (first, second):
        assert result.returncode == 1, result.output
        assert "Traceback" not in result.output
        assert "session b cannot be read" in result.stderr
    # the sessions around it arrived, once; b stays failed and is asked for again
    assert _archived(tmp_path) == [
        f"{appliance.host.replace(':', '_')}-support-{x}.xml" for x in "ac"
    ]
    assert _statuses(tmp_path) == {"a": "delivered", "b": "failed", "c": "delivered"}


def test_a_listed_session_missing_from_the_report_stays_pending(tmp_path):
    with HostileAppliance() as appliance:
        appliance.routes["SupportSessionListing"] = lambda _p: Answer(body=listing("a", "b"))
        appliance.routes["SupportSession"] = lambda _p: Answer(body=report(session_xml("a")))
        config = _config(tmp_path, appliance)
        lagging = run_btic("sync", "--all", "--config", str(config))
        assert lagging.returncode == 1
        assert "session b was listed but its full support report does not hold it" in lagging.stderr
        appliance.routes["SupportSession"] = lambda p: Answer(
            body=report(*(session_xml(lsid) for lsid in p["lsids"].split(",")))
        )
        caught_up = run_btic("sync", "--all", "--config", str(config))
    assert caught_up.returncode == 0, caught_up.output
    assert _statuses(tmp_path) == {"a": "delivered", "b": "delivered"}
    assert len(_archived(tmp_path)) == 2


def test_a_non_numeric_api_clock_is_an_answer_not_a_traceback(tmp_path):
    with HostileAppliance() as appliance:
        appliance.routes["get_api_info"] = lambda _p: Answer(
            body=b"<api_information><timestamp>yesterday</timestamp></api_information>"
        )
        appliance.routes["SupportSessionListing"] = lambda _p: Answer(body=listing("a"))
        appliance.routes["SupportSession"] = lambda _p: Answer(body=report(session_xml("a")))
        result = run_btic("sync", "--all", "--config", str(_config(tmp_path, appliance)))
    # The Date header is a clock too; the run goes on.
    assert result.returncode == 0, result.output
    assert _statuses(tmp_path) == {"a": "delivered"}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_an_lsid_longer_than_any_column_is_ledgered_once(tmp_path, database, request):
    lsid = "x" * 300
    with HostileAppliance() as appliance:
        appliance.routes["SupportSessionListing"] = lambda _p: Answer(body=listing(lsid))
        appliance.routes["SupportSession"] = lambda _p: Answer(body=report(session_xml(lsid)))
        state = None
        if database == "postgresql":
            from conftest import new_postgres_database

            state = new_postgres_database(request.getfixturevalue("postgres_url"))
        config = _config(tmp_path, appliance, state)
        for _ in range(2):
            result = run_btic("sync", "--all", "--config", str(config))
            assert result.returncode == 0, result.output
    assert len(_archived(tmp_path)) == 1


def _with_recording(appliance: HostileAppliance, recording: Callable[[dict], Answer]) -> None:
    url = (
        f"http://{appliance.host}/api/reporting?generate_report=SupportSessionRecording&amp;lsid=a"
    )
    appliance.routes["SupportSessionListing"] = lambda _p: Answer(
        body=listing("a", has_recording=True)
    )
    appliance.routes["SupportSession"] = lambda _p: Answer(
        body=report(
            session_xml(
                "a", extra=f"<session_recording_download_url>{url}</session_recording_download_url>"
            )
        )
    )
    appliance.routes["SupportSessionRecording"] = recording


def _recording_config(tmp_path: Path, appliance: HostileAppliance) -> Path:
    path = tmp_path / "btic.toml"
    path.write_text(appliance.config(tmp_path / "archive", data=("recording",)))
    path.chmod(0o600)
    return path


def test_a_redirect_is_never_archived_as_a_recording(tmp_path):
    with HostileAppliance() as appliance:
        _with_recording(
            appliance,
            lambda _p: Answer(
                302,
                b"<html>moved elsewhere</html>",
                {"Content-Type": "video/x-flv", "Location": "http://elsewhere.example/x.flv"},
            ),
        )
        result = run_btic("sync", "--all", "--config", str(_recording_config(tmp_path, appliance)))
    assert result.returncode == 1
    assert "HTTP 302" in result.stderr and "btic follows no redirects" in result.stderr
    assert not (tmp_path / "archive").exists() or _archived(tmp_path) == []
    assert _statuses(tmp_path) == {"a": "failed"}


def test_a_body_whose_end_cannot_be_proven_is_never_archived(tmp_path):
    """A proxy that cuts close-delimited bodies at its size limit cuts every download
    at the same byte: no number of matching downloads proves the end."""
    body = bytes(range(256)) * 400
    cut_short = {"on": True}

    def recording(_params):
        if cut_short["on"]:  # the same first half, every time, and no length
            return Answer(
                body=body[: len(body) // 2], headers={"Content-Type": "video/x-flv"}, no_length=True
            )
        return Answer(body=body, headers={"Content-Type": "video/x-flv"})

    with HostileAppliance() as appliance:
        _with_recording(appliance, recording)
        config = _recording_config(tmp_path, appliance)
        for _ in range(2):
            cut = run_btic("sync", "--all", "--config", str(config), "--json")
            assert cut.returncode == 1, cut.output
            assert "neither a Content-Length nor chunked encoding" in cut.stdout
            assert "Traceback" not in cut.output
            [tally] = json.loads(cut.stdout)["tallies"]
            assert tally["failed"] == 1 and tally["delivered"] == 0
            assert not (tmp_path / "archive").exists() or _archived(tmp_path) == []
            assert _statuses(tmp_path) == {"a": "failed"}
        # refused before its body was read: one request per run, no second download
        assert [name for name, _ in appliance.requests].count("SupportSessionRecording") == 2
        verify = run_btic("verify", "--config", str(config))
        assert verify.returncode == 0, verify.output
        cut_short["on"] = False
        whole = run_btic("sync", "--all", "--config", str(config))
    assert whole.returncode == 0, whole.output
    [archived] = (tmp_path / "archive").iterdir()
    assert archived.read_bytes() == body
    assert _statuses(tmp_path) == {"a": "delivered"}


@pytest.mark.parametrize("expires_in", [0, -5, "NaN"])
def test_an_absurd_token_lifetime_still_means_one_token(tmp_path, expires_in):
    with HostileAppliance() as appliance:
        appliance.routes["token"] = lambda _p: Answer(
            body=f'{{"access_token": "t0k3n", "expires_in": {json.dumps(expires_in)}}}'.replace(
                '"NaN"', "NaN"
            ).encode()
        )
        appliance.routes["SupportSessionListing"] = lambda _p: Answer(body=listing("a", "b"))
        appliance.routes["SupportSession"] = lambda p: Answer(
            body=report(*(session_xml(lsid) for lsid in p["lsids"].split(",")))
        )
        result = run_btic("sync", "--all", "--config", str(_config(tmp_path, appliance)))
    assert result.returncode == 0, result.output
    assert [name for name, _ in appliance.requests].count("token") == 1


def test_a_malformed_or_huge_token_answer_is_refused_without_echo(tmp_path):
    with HostileAppliance() as appliance:
        appliance.routes["token"] = lambda _p: Answer(
            body=b'{"access_token": "abc\\r\\nX-Injected: secretpart", "expires_in": 3600}'
        )
        bad = run_btic("sync", "--all", "--config", str(_config(tmp_path, appliance)))
        appliance.routes["token"] = lambda _p: Answer(
            body=b'{"access_token": "' + b"A" * (3 << 20) + b'"}'
        )
        huge = run_btic("sync", "--all", "--config", str(_config(tmp_path, appliance)))
    assert bad.returncode == 1 and "malformed access token" in bad.stderr
    assert "secretpart" not in bad.output and "Traceback" not in bad.output
    assert huge.returncode == 1 and "at most 1048576 expected" in huge.stderr


def test_one_huge_session_fails_alone_and_memory_stays_bounded(tmp_path):
    """Past max_session_megabytes a report is not parsed: the batch is halved until the
    huge session stands alone, and only it fails."""
    huge_extra = "<session_details>" + "<event/>" * 400_000 + "</session_details>"  # ~3 MB

    def full_report(params):
        return Answer(
            body=report(
                *(
                    session_xml(lsid, extra=huge_extra if lsid == "huge" else "")
                    for lsid in params["lsids"].split(",")
                )
            )
        )

    with HostileAppliance() as appliance:
        appliance.routes["SupportSessionListing"] = lambda _p: Answer(
            body=listing("a", "b", "huge", "c")
        )
        appliance.routes["SupportSession"] = full_report
        config = _config(tmp_path, appliance)
        config.write_text(config.read_text().replace(
            'settle_delay = "0s"\n', 'settle_delay = "0s"\nmax_session_megabytes = 1\n'
        ))  # fmt: skip
        result = run_btic("sync", "--all", "--config", str(config))
    assert result.returncode == 1
    assert "session huge's report is over 1 MB" in result.stderr
    assert _statuses(tmp_path) == {
        "a": "delivered",
        "b": "delivered",
        "c": "delivered",
        "huge": "failed",
    }


@pytest.mark.parametrize("reference", ["&#0;", "&#x1F;", "&#xFFFE;"])
def test_a_session_with_a_character_xml_forbids_fails_alone(tmp_path, reference):
    """Only the session that holds the character fails: its batch is split until it
    stands alone, and the others are delivered, on this run and on every later one."""

    def full_report(params):
        return Answer(
            body=report(
                *(
                    session_xml(
                        lsid,
                        extra=f"<external_key>x{reference}y</external_key>"
                        if lsid == "bad"
                        else "",
                    )
                    for lsid in params["lsids"].split(",")
                )
            )
        )

    with HostileAppliance() as appliance:
        appliance.routes["SupportSessionListing"] = lambda _p: Answer(
            body=listing("a", "b", "bad", "c")
        )
        appliance.routes["SupportSession"] = full_report
        config = _config(tmp_path, appliance)
        first = run_btic("sync", "--all", "--config", str(config))
        second = run_btic("sync", "--all", "--config", str(config))
    for result in (first, second):
        assert result.returncode == 1, result.output
        assert "Traceback" not in result.output
        assert "session bad's report is not well-formed XML" in result.stderr
        assert "lsids=" not in result.stderr  # no batch is named as failed
    assert _statuses(tmp_path) == {
        "a": "delivered",
        "b": "delivered",
        "bad": "failed",
        "c": "delivered",
    }
    assert len(_archived(tmp_path)) == 3


def test_a_session_without_an_lsid_is_never_archived_and_an_odd_number_is_reported(tmp_path):
    no_lsid = session_xml("b").replace('lsid="b"', 'lsid=""')
    odd = session_xml("c", extra='<primary_rep gsnumber="G-7" id="2">Kai</primary_rep>')
    with HostileAppliance() as appliance:
        appliance.routes["SupportSessionListing"] = lambda _p: Answer(body=listing("a", "b", "c"))
        appliance.routes["SupportSession"] = lambda _p: Answer(
            body=report(session_xml("a"), no_lsid, odd)
        )
        config = _config(tmp_path, appliance)
        result = run_btic("sync", "--all", "--config", str(config), "--json")
    assert result.returncode == 1, result.output
    summary = json.loads(result.stdout)
    assert any("session (no lsid) cannot be read" in p for p in summary["problems"])
    assert any("session b was listed but" in p for p in summary["problems"])
    assert any(
        "session c: <primary_rep gsnumber>='G-7' could not be converted" in n
        for n in summary["notes"]
    )
    host = appliance.host.replace(":", "_")
    assert _archived(tmp_path) == [f"{host}-support-a.xml", f"{host}-support-c.xml"]
    assert 'gsnumber="G-7"' in (tmp_path / "archive" / f"{host}-support-c.xml").read_text()
    assert _statuses(tmp_path) == {"a": "delivered", "c": "delivered"}
