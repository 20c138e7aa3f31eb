"""The state database on real SQLite and PostgreSQL: ledger, watermarks, runs, schema version."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from btic.state import (
    DELIVERED,
    EXPIRED,
    FAILED,
    GIVEN_UP,
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


def test_failures_are_retried_forever_unless_given_up(state_url):
    store = StateStore(state_url)

    def fail(key, error, **kwargs):
        return store.record(
            site="s", destination="d", data_type="session", item_key=key, status=FAILED,
            run_id="r", error=error, **kwargs,
        )  # fmt: skip

    # an outage (the same text every run) never gives an item up
    assert [fail("x", "No space left on device") for _ in range(3 * MAX_ATTEMPTS)][-1] == 15
    assert store.settled("s", "d", "session", ["x"]) == set()
    assert store.count_given_up() == 0
    # the appliance saying "no such item" run after run is believed, in time
    for _ in range(MAX_ATTEMPTS - 1):
        fail("y", "no recording", give_up_after=MAX_ATTEMPTS)
    assert store.settled("s", "d", "session", ["y"]) == set()
    fail("y", "no recording", give_up_after=MAX_ATTEMPTS)
    assert store.settled("s", "d", "session", ["y"]) == {"y"}
    assert store.settled("s", "d", "session", ["y"], include_given_up=False) == set()
    # a destination's permanent refusal gives up at once
    fail("z", "bad name", give_up=True)
    assert store.settled("s", "d", "session", ["z"]) == {"z"}
    assert store.count_given_up() == 2 and store.count_given_up(["other"]) == 0
    assert {e.item_key for e in store.entries(status=GIVEN_UP)} == {"y", "z"}


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


def test_a_version_1_ledger_is_migrated_holds_sizes_over_2_gib_and_plaintext_hashes(state_url):
    """Version 1 kept sizes in a 32-bit INTEGER on PostgreSQL: a recording over 2 GiB
    could not be recorded. Opening such a database migrates it (and keeps its rows)."""
    from sqlalchemy import text

    store = StateStore(state_url)
    moment = datetime(2026, 11, 23, tzinfo=timezone.utc)
    store.record(site="s", destination="d", data_type="recording", item_key="old", status="delivered",
                 run_id="r", size=1000, item_time=moment, location="/a/old")  # fmt: skip
    with store.engine.begin() as connection:
        if store.engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE btic_deliveries ALTER COLUMN size TYPE INTEGER"))
        # Version 3 added plain_sha256 (sealed items) and verified_at.
        connection.execute(text("ALTER TABLE btic_deliveries DROP COLUMN plain_sha256"))
        connection.execute(text("ALTER TABLE btic_deliveries DROP COLUMN verified_at"))
        connection.execute(
            update(meta_table).where(meta_table.c.key == "schema_version").values(value="1")
        )
    store.close()
    migrated = StateStore(state_url)
    big = 3 * 2**30
    migrated.record(site="s", destination="d", data_type="recording", item_key="big",
                    status="delivered", run_id="r", size=big, item_time=moment,
                    sha256="b" * 64, plain_sha256="a" * 64, location="/a/big")  # fmt: skip
    sizes = {entry.item_key: entry.size for entry in migrated.entries()}
    plain = {entry.item_key: entry.plain_sha256 for entry in migrated.entries()}
    checked = datetime.now(timezone.utc)
    assert migrated.record_verified("d", started=checked) == 2
    verified = {entry.verified_at for entry in migrated.entries()}
    with migrated.engine.connect() as connection:
        version = connection.execute(
            text("select value from btic_meta where key = 'schema_version'")
        ).scalar()
    migrated.close()
    assert sizes == {"old": 1000, "big": big}
    assert plain == {"old": None, "big": "a" * 64}
    assert verified == {checked}
    assert version == "3"


def test_statuses_read_as_their_text_in_logs_json_rows_and_lookups():
    import json

    from btic.statuses import LedgerStatus, RunStatus

    # A log line renders values with repr(): it must say status='delivered', as before.
    assert repr(LedgerStatus.DELIVERED) == "'delivered'"
    assert json.dumps([RunStatus.OK, LedgerStatus.GIVEN_UP]) == '["ok", "given_up"]'
    assert f"{RunStatus.FAILED:>8}" == "  failed"
    # A row's plain text is the status, in comparisons and in hashed lookups alike.
    assert LedgerStatus.DELIVERED == "delivered" and {"delivered": 1}[LedgerStatus.DELIVERED] == 1
    assert LedgerStatus("removed") is LedgerStatus.REMOVED


@pytest.mark.parametrize(
    ("dialect", "collation"),
    [
        ("postgresql", 'COLLATE "C"'),
        ("mysql", "COLLATE utf8mb4_bin"),
        ("mariadb", "COLLATE utf8mb4_bin"),
    ],
)
def test_search_terms_are_compared_bytewise_on_every_server(dialect, collation):
    """A prefix search uses the terms' index only under a bytewise collation, and
    the schema says so without importing the dialects' own types at start-up."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.schema import CreateTable

    from btic.state.schema import session_terms

    server = make_url(f"{dialect}://").get_dialect()()
    ddl = str(CreateTable(session_terms).compile(dialect=server))
    assert f"term VARCHAR(200) {collation} NOT NULL" in ddl
