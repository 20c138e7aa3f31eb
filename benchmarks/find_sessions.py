"""``btic find`` over a large archive: btic's search against the same answers got by
hand-written SQL on the same tables (the baseline: what a user who knows the
schema would type), on SQLite and PostgreSQL.

Fills a fresh state database with --sessions synthetic archived sessions (each
with a representative, a customer and its host name as search terms, and two
ledger rows: its report and its recording), then times each question --repeat
times, btic and baseline alternating:

* ``person``: one representative's sessions (about 200 at a million);
* ``host``: one endpoint's sessions (about 10);
* ``prefix``: representatives whose username starts with ``user42`` (22,000
  matches, the latest 1,000 shown);
* ``window``: the latest 1,000 sessions of the last day;
* ``lsid``: one session.

btic's figure is :func:`btic.find.find` in-process (the index query, and each
session's items from the ledger), as the command runs it; the baseline runs the
same two statements through the DB-API. Min and median are printed, and
baseline / btic (1.0: no overhead). PostgreSQL runs on a private server started
here (Debian's postgresql).

    .venv/bin/python benchmarks/find_sessions.py [--sessions 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from btic.find import find
from btic.state import StateStore
from btic.state.session_index import SessionQuery, TermFilter
from btic.summaries import TermKind

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
CHUNK = 20_000


Rows = list[tuple[Any, ...]]


def rows(sessions: int) -> Iterator[tuple[Rows, Rows, Rows]]:
    """(sessions, terms, deliveries) in chunks: one session a minute from START."""
    for first in range(0, sessions, CHUNK):
        s, t, d = [], [], []
        for n in range(first, min(first + CHUNK, sessions)):
            lsid = f"{n:032x}"
            start = START + timedelta(minutes=n)
            end = start + timedelta(minutes=20)
            user, host = f"user{n % 5000}", f"ws-{n % 100000:05d}"
            people, customers = f"User {n % 5000} ({user})", f"Customer {n}"
            host_name = "support.example.com"
            s.append(("sim", lsid, host_name, "rs", start, end, None, people, customers, lsid))
            t += [("person", user, "sim", lsid), ("person", str(n % 5000 + 1), "sim", lsid),
                  ("customer", f"cust{n}", "sim", lsid), ("host", host, "sim", lsid)]  # fmt: skip
            for kind in ("session", "recording"):
                d.append(("sim", "archive", kind, lsid, "delivered", f"/srv/archive/{lsid}.{kind}",
                          1000, "0" * 64, 0, end, "bench", end, end))  # fmt: skip
        yield s, t, d


SESSION_COLUMNS = (
    "site, lsid, host, product, start_time, end_time, external_key, people, customers, item_keys"
)
TERM_COLUMNS = "kind, term, site, lsid"
DELIVERY_COLUMNS = (
    "site, destination, data_type, item_key, status, location, size, sha256, attempts, "
    "item_time, run_id, created_at, updated_at"
)


def fill(url: str, sessions: int) -> None:
    StateStore(url).close()  # the schema, as btic makes it
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        postgres = engine.dialect.name == "postgresql"
        for s, t, d in rows(sessions):
            for table, columns, data in (
                ("btic_sessions", SESSION_COLUMNS, s),
                ("btic_session_terms", TERM_COLUMNS, t),
                ("btic_deliveries", DELIVERY_COLUMNS, d),
            ):
                if postgres:
                    statement = f"COPY {table} ({columns}) FROM STDIN"
                    with cursor.copy(statement) as copy:  # type: ignore[attr-defined]
                        for row in data:
                            copy.write_row(row)
                else:
                    marks = ", ".join("?" * len(columns.split(",")))
                    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", data)
            raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


def questions(sessions: int) -> dict[str, SessionQuery]:
    last = START + timedelta(minutes=sessions)
    return {
        "person": SessionQuery(terms=(TermFilter(TermKind.PERSON, "user4242"),)),
        "host": SessionQuery(terms=(TermFilter(TermKind.HOST, "ws-04242"),)),
        "prefix": SessionQuery(terms=(TermFilter(TermKind.PERSON, "user42", prefix=True),)),
        "window": SessionQuery(since=last - timedelta(days=1)),
        "lsid": SessionQuery(lsid=f"{sessions // 2:032x}"),
    }


def baseline(url: str) -> Callable[[SessionQuery], int]:
    """The same answers by hand-written SQL through the DB-API."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    raw = engine.raw_connection()
    mark = "%s" if engine.dialect.name == "postgresql" else "?"

    def run(query: SessionQuery) -> int:
        cursor = raw.cursor()
        where, args, join = [], [], ""
        for term in query.terms:
            join = " JOIN btic_session_terms t ON t.site = s.site AND t.lsid = s.lsid"
            where.append(f"t.kind = {mark}")
            args.append(term.kind.value)
            if term.prefix:
                where.append(f"t.term >= {mark} AND t.term < {mark}")
                args += [term.value, term.value + "\U0010ffff"]
            else:
                where.append(f"t.term = {mark}")
                args.append(term.value)
        if query.lsid is not None:
            where.append(f"s.lsid = {mark}")
            args.append(query.lsid)
        if query.since is not None:
            where.append(f"s.end_time >= {mark}")
            since = query.since
            args.append(since if mark == "%s" else since.isoformat(" ").replace("+00:00", ""))
        sql = (
            f"SELECT DISTINCT s.site, s.lsid, s.end_time, s.item_keys FROM btic_sessions s{join} "
            f"WHERE {' AND '.join(where) or '1=1'} "
            f"ORDER BY s.end_time DESC, s.lsid LIMIT {query.limit}"
        )
        cursor.execute(sql, args)
        found = cursor.fetchall()
        keys = [key for _site, _lsid, _end, joined in found for key in joined.split("\n")]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            cursor.execute(
                f"SELECT * FROM btic_deliveries WHERE site = {mark} AND item_key IN "
                f"({', '.join([mark] * len(chunk))})",
                ["sim", *chunk],
            )
            cursor.fetchall()
        raw.commit()
        return len(found)

    return run


@contextmanager
def databases(which: list[str], root: Path) -> Iterator[Iterator[tuple[str, str]]]:
    from btic.testing.servers import PostgresServer

    def urls() -> Iterator[tuple[str, str]]:
        if "sqlite" in which:
            yield "sqlite", f"sqlite:///{root / 'state.db'}"
        if "postgresql" in which:
            with PostgresServer.started() as server:
                yield "postgresql", server.new_database()

    yield urls()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="btic-find-") as tmp,
        databases(args.databases.split(","), Path(tmp)) as urls,
    ):
        for name, url in urls:
            started = time.perf_counter()
            fill(url, args.sessions)
            took = time.perf_counter() - started
            print(f"{name}: {args.sessions:,} sessions filled in {took:.0f} s")
            state = StateStore(url)
            other = baseline(url)
            for label, query in questions(args.sessions).items():
                ours, theirs, counts = [], [], set()
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    counts.add(len(find(state, query)))
                    ours.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    counts.add(other(query))
                    theirs.append(time.perf_counter() - t0)
                if len(counts) != 1:
                    sys.exit(f"{name} {label}: btic and the baseline disagree: {counts}")
                mine, base = statistics.median(ours), statistics.median(theirs)
                print(
                    f"{name:10} {label:7} {counts.pop():5} sessions  "
                    f"btic min {min(ours) * 1000:7.1f} ms median {mine * 1000:7.1f} ms  "
                    f"baseline min {min(theirs) * 1000:7.1f} ms median {base * 1000:7.1f} ms  "
                    f"baseline/btic {base / mine:.2f}"
                )
            state.close()


if __name__ == "__main__":
    main()
