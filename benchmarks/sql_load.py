"""Loading sessions into the SQL storage tables: btic's batched writer against a
plain DB-API ``executemany`` of prebuilt tuples (the ceiling) and a naive load
of one ORM object per row (the floor).

Renders --sessions simulated RS sessions (with events, system information,
people, teams, custom attributes), parses them with btic's parser and turns
them into rows once; then, in a fresh database each time, times each loader
on the same rows:

* ``btic``: ``Writer.replace`` in batches of 500 sessions (the plugin's flush:
  delete earlier copies, one ``executemany`` per table, keys read back once
  per batch);
* ``executemany``: DB-API ``executemany`` of tuples with ids assigned in
  Python, one transaction per 500 sessions: no key is read back, no
  replacement, nothing checked: the ceiling;
* ``orm``: one SQLAlchemy ORM object per row, flushed as it goes so children
  get their parents' keys, one transaction per session.

Each is repeated (--repeat); min and median are printed, as rows/s and the
ratio to the ceiling. Peak RSS is measured by a separate streaming run of
btic's path (parse, build rows and write batch by batch, as a transfer does).
SQLite runs in a temporary file; PostgreSQL on a private server started here
(Debian's postgresql), or at --postgres-url.

    .venv/bin/python benchmarks/sql_load.py [--sessions 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHILD = r"""
import json, re, sys, time
from pathlib import Path


def peak_mb():
    # VmHWM starts afresh at exec (ru_maxrss keeps the forking parent's peak).
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


mode, report, url = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
import sqlalchemy as sa
from btic.appliance.parse import iter_sessions
from btic_sqlserver import schema
from btic_sqlserver.rows import session_rows
from btic_sqlserver.writer import Writer

BATCH = 500


def parsed():
    for session, _xml in iter_sessions(report, product="rs", report="support", host="bench"):
        yield session_rows(session)


engine = sa.create_engine(url)
schema.metadata.create_all(engine)

if mode == "stream":
    writer = Writer(engine, "bench")
    started = time.perf_counter()
    batch, total = [], 0
    for rows in parsed():
        batch.append(rows)
        total += rows.count()
        if len(batch) == BATCH:
            writer.replace(batch)
            batch = []
    if batch:
        writer.replace(batch)
    elapsed = time.perf_counter() - started
    print(json.dumps({"rows": total, "seconds": elapsed,
                      "peak_rss_mb": peak_mb()}))
    sys.exit()

everything = list(parsed())
total = sum(rows.count() for rows in everything)
batches = [everything[i:i + BATCH] for i in range(0, len(everything), BATCH)]

if mode == "btic":
    writer = Writer(engine, "bench")
    started = time.perf_counter()
    for batch in batches:
        writer.replace(batch)
    elapsed = time.perf_counter() - started

elif mode == "executemany":
    # Prebuilt tuples, ids assigned here: what a bulk loader that owns the keys does.
    tables = {t.name: t for t in schema.metadata.sorted_tables}
    next_id = {name: 1 for name in tables}
    prepared = []
    for batch in batches:
        per_table = {name: [] for name in tables}
        for rows in batch:
            sid = next_id["session"]; next_id["session"] += 1
            per_table["session"].append({"id": sid, **rows.session})
            for table, children in rows.children.items():
                for row in children:
                    new = {"id": next_id[table.name], "session_id": sid, **row}
                    per_table[table.name].append(new)
                    next_id[table.name] += 1
            for e in rows.events:
                eid = next_id["session_event"]; next_id["session_event"] += 1
                per_table["session_event"].append({"id": eid, "session_id": sid, **e.event})
                for name, children in (("session_event_data", e.data),
                                       ("system_information", e.system_information)):
                    for row in children:
                        new = {"id": next_id[name], "session_event_id": eid, **row}
                        per_table[name].append(new)
                        next_id[name] += 1
        statements = []
        for name in ("session", "session_event", "session_event_data", "system_information",
                     "representative", "customer", "team", "custom_attribute"):
            rows_of = per_table[name]
            if not rows_of:
                continue
            columns = [c.name for c in tables[name].columns]
            marker = "?" if engine.dialect.name == "sqlite" else "%s"
            sql = (f'INSERT INTO "{name}" ({", ".join(columns)}) '
                   f'VALUES ({", ".join([marker] * len(columns))})')
            statements.append((sql, [tuple(r.get(c) for c in columns) for r in rows_of]))
        prepared.append(statements)
    raw = engine.raw_connection()
    cursor = raw.cursor()
    started = time.perf_counter()
    for statements in prepared:
        for sql, values in statements:
            cursor.executemany(sql, values)
        raw.commit()
    elapsed = time.perf_counter() - started
    raw.close()

else:  # orm: one object per row
    from sqlalchemy.orm import Session as OrmSession, registry

    mapper = registry()
    classes = {}
    for table in schema.metadata.sorted_tables:
        classes[table.name] = type(table.name.title().replace("_", ""), (), {})
        mapper.map_imperatively(classes[table.name], table)

    def obj(name, values):
        made = classes[name]()
        for key, value in values.items():
            setattr(made, key, value)
        return made

    started = time.perf_counter()
    with OrmSession(engine) as db:
        for rows in everything:
            s = obj("session", rows.session)
            db.add(s)
            db.flush()
            for table, children in rows.children.items():
                for row in children:
                    db.add(obj(table.name, {**row, "session_id": s.id}))
            for e in rows.events:
                ev = obj("session_event", {**e.event, "session_id": s.id})
                db.add(ev)
                db.flush()
                for row in e.data:
                    db.add(obj("session_event_data", {**row, "session_event_id": ev.id}))
                for row in e.system_information:
                    db.add(obj("system_information", {**row, "session_event_id": ev.id}))
            db.commit()
    elapsed = time.perf_counter() - started

print(json.dumps({"rows": total, "seconds": elapsed,
                  "peak_rss_mb": peak_mb()}))
"""


def write_report(path: Path, sessions: int) -> None:
    from btic.sim.data import SimDataset
    from btic.sim.render import sessions_document

    dataset = SimDataset(product="rs", seed=1, anchor=int(time.time()), sessions=0, live_sessions=0)
    base = dataset.anchor - 30 * 86400
    with path.open("wb") as out:
        made = 0
        while made < sessions:
            batch = []
            for _ in range(min(500, sessions - made)):
                batch.append(dataset.add_session(base + made * 60, base + made * 60 + 1800))
                made += 1
            for chunk in sessions_document(dataset, batch, time.time(), "https://bench"):
                if chunk.startswith(b"<?xml") and made > len(batch):
                    continue
                if chunk.startswith(b"</session_list>"):
                    continue
                out.write(chunk)
        out.write(b"</session_list>\n")


@contextmanager
def private_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server (fsync on, as in production)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("PostgreSQL is not installed (give --postgres-url)")
    initdb = found[-1]
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    root = Path(tempfile.mkdtemp(prefix="btic-bench-pg-"))
    run_as = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(
        [*run_as, initdb, "-D", str(root / "data"), "-U", "btic", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*run_as, pg_ctl, "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-o",
         f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://btic@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(root / "data"), "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(kind: str, server: str | None, scratch: Path, counter: list[int]) -> str:
    counter[0] += 1
    if kind == "sqlite":
        return f"sqlite:///{scratch / f'load-{counter[0]}.db'}"
    import psycopg

    assert server is not None
    name = f"bench_{counter[0]}"
    plain = server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def measure(mode: str, report: Path, url: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(report), url],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="btic-bench-sql-") as scratch_dir:
        scratch = Path(scratch_dir)
        report = scratch / "report.xml"
        write_report(report, args.sessions)
        print(f"report: {args.sessions:,} sessions, {report.stat().st_size / 2**20:.0f} MB")
        counter = [0]
        for kind in args.databases.split(","):
            server_cm = (
                private_postgres()
                if kind == "postgresql" and args.postgres_url is None
                else _given(args.postgres_url)
            )
            with server_cm as server:
                figures: dict[str, list[float]] = {}
                rows = 0
                for _ in range(args.repeat):
                    for mode in ("executemany", "btic", "orm"):
                        url = fresh_database(kind, server, scratch, counter)
                        result = measure(mode, report, url)
                        rows = int(result["rows"])
                        figures.setdefault(mode, []).append(rows / result["seconds"])
                stream = measure("stream", report, fresh_database(kind, server, scratch, counter))
                ceiling = statistics.median(figures["executemany"])
                print(f"\n{kind}: {rows:,} rows")
                print(f"{'loader':<12} {'min rows/s':>12} {'median rows/s':>14} {'ratio':>6}")
                for mode, values in figures.items():
                    median = statistics.median(values)
                    print(
                        f"{mode:<12} {min(values):>12,.0f} {median:>14,.0f} "
                        f"{median / ceiling:>6.2f}"
                    )
                print(
                    f"btic streaming (parse + rows + write): "
                    f"{stream['rows'] / stream['seconds']:,.0f} rows/s, "
                    f"peak RSS {stream['peak_rss_mb']:.0f} MB"
                )


@contextmanager
def _given(url: str | None) -> Iterator[str | None]:
    yield url


if __name__ == "__main__":
    main()
