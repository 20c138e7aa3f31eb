"""The state database on real SQLite and PostgreSQL: ledger, watermarks, runs, schema version."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from btic.state import (
    DELIVERED,
    EXPIRED,
    FAILED,
    MAX_ATTEMPTS,
    SKIPPED,
    StateError,
    StateStore,
    meta_table,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("fresh_postgres")


def test_the_ledger_settles_what_was_delivered_skipped_or_expired(state_url):
    store = StateStore(state_url)
    for key, status in (("a", DELIVERED), ("b", SKIPPED), ("c", EXPIRED), ("d", FAILED)):
        store.record(
            site="s", destination="d1", data_type="session", item_key=key, status=status, run_id="r"
        )
    assert store.settled("s", "d1", "session", ["a", "b", "c", "d", "e"]) == {"a", "b", "c"}
    assert store.settled("s", "d2", "session", ["a"]) == set()  # per destination
    assert store.settled("s", "d1", "recording", ["a"]) == set()  # per data type
    store.record(
        site="s",
        destination="d1",
        data_type="session",
        item_key="d",
        status=DELIVERED,
        run_id="r2",
        location="/x/d.xml",
        size=10,
        sha256="ab",
    )
    entry = next(e for e in store.entries(site="s") if e.item_key == "d")
    assert (entry.status, entry.location, entry.size, entry.sha256, entry.attempts) == (
        DELIVERED,
        "/x/d.xml",
        10,
        "ab",
        0,
    )
    assert store.count() == 4


def test_an_item_failing_the_same_way_is_given_up_after_max_attempts(state_url):
    store = StateStore(state_url)
    counts = [
        store.record(
            site="s",
            destination="d",
            data_type="session",
            item_key="x",
            status=FAILED,
            run_id=str(i),
            error="disk full",
        )
        for i in range(MAX_ATTEMPTS)
    ]
    assert counts == list(range(1, MAX_ATTEMPTS + 1))
    assert store.settled("s", "d", "session", ["x"]) == {"x"}  # reported, no longer retried
    assert store.settled("s", "d", "session", ["x"], include_given_up=False) == set()
    # a different failure starts counting again
    assert (
        store.record(
            site="s",
            destination="d",
            data_type="session",
            item_key="x",
            status=FAILED,
            run_id="z",
            error="permission denied",
        )
        == 1
    )
    assert (
        store.record(
            site="s",
            destination="d",
            data_type="session",
            item_key="y",
            status=FAILED,
            run_id="z",
            error="bad name",
            give_up=True,
        )
        == MAX_ATTEMPTS
    )


def test_watermarks_only_move_forward(state_url):
    store = StateStore(state_url)
    t0 = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert store.watermark("s", "session", "d") is None
    store.advance_watermark("s", "session", "d", t0)
    store.advance_watermark("s", "session", "d", t0 - timedelta(hours=1))
    assert store.watermark("s", "session", "d") == t0
    store.advance_watermark("s", "session", "d", t0 + timedelta(minutes=5))
    assert store.watermark("s", "session", "d") == t0 + timedelta(minutes=5)
    assert store.watermark("s", "session", "other") is None


def test_runs_are_recorded(state_url):
    store = StateStore(state_url)
    run = store.start_run("sync", "nightly")
    store.finish_run(run, "ok", "summary text")
    from sqlalchemy import select

    from btic.state import runs

    with store.engine.connect() as connection:
        row = connection.execute(select(runs).where(runs.c.id == run)).one()
    assert (row.kind, row.schedule, row.status, row.summary) == (
        "sync",
        "nightly",
        "ok",
        "summary text",
    )
    assert row.finished_at is not None


def test_a_newer_schema_is_refused(state_url):
    store = StateStore(state_url)
    with store.engine.begin() as connection:
        connection.execute(
            update(meta_table).where(meta_table.c.key == "schema_version").values(value="99")
        )
    store.close()
    with pytest.raises(StateError, match="schema version 99, newer than this btic understands"):
        StateStore(state_url)


def test_an_unreachable_database_is_one_clear_error():
    with pytest.raises(StateError) as info:
        StateStore("postgresql+psycopg://btic:hunter2@127.0.0.1:9/btic")
    assert "cannot be opened" in str(info.value)
    assert "hunter2" not in str(info.value)
