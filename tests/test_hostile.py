"""btic against a broken or hostile appliance: one bad item never stops the rest."""

from __future__ import annotations

import sqlite3
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
        first = run_btic("sync", "--config", str(config))
        second = run_btic("sync", "--config", str(config))
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
        lagging = run_btic("sync", "--config", str(config))
        assert lagging.returncode == 1
        assert "session b was listed but its full support report does not hold it" in lagging.stderr
        appliance.routes["SupportSession"] = lambda p: Answer(
            body=report(*(session_xml(lsid) for lsid in p["lsids"].split(",")))
        )
        caught_up = run_btic("sync", "--config", str(config))
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
        result = run_btic("sync", "--config", str(_config(tmp_path, appliance)))
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
            result = run_btic("sync", "--config", str(config))
            assert result.returncode == 0, result.output
    assert len(_archived(tmp_path)) == 1
