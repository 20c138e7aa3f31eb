"""The SQL plugin on real databases: SQLite, PostgreSQL, and MariaDB through unixODBC
and pyodbc; SQL Server through what its dialect compiles."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from lxml import etree

import btic
from btic.appliance.model import Session
from btic.testing.helpers import ConfiguredDestination, sample_session

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from conftest import new_postgres_database, run_btic
from transfer_helpers import write_config

TABLES = [
    "session",
    "session_event",
    "session_event_data",
    "system_information",
    "representative",
    "customer",
    "user",
    "endpoint",
    "team",
    "custom_attribute",
]


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def storage_url(request, tmp_path):
    """An empty storage database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reports.db'}"
    if request.param == "postgresql":
        return new_postgres_database(request.getfixturevalue("postgres_url"))
    return request.getfixturevalue("mariadb_odbc")()


def counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            quote = engine.dialect.identifier_preparer.quote
            return {
                t: connection.execute(sa.text(f"SELECT COUNT(*) FROM {quote(t)}")).scalar_one()
                for t in TABLES
            }
    finally:
        engine.dispose()


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def moment(value) -> datetime:
    """A stored time (SQLite gives text to a plain query) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert value.tzinfo is None, "times are stored as UTC without a zone"
    return value.replace(tzinfo=timezone.utc)


def sql_config(
    tmp_path: Path, sim, url: str, data=("session", "presentation"), extra: str = "", site: str = ""
):
    """A configuration that sends the simulator's reports to the database and, as files,
    to a directory (the XML the rows are checked against)."""
    destinations = (
        f'[destinations.reports]\nplugin = "sqlserver"\nurl = "{url}"\n{extra}'
        f'[destinations.files]\nplugin = "filesystem"\ndirectory = "{tmp_path / "files"}"\n'
    )
    return write_config(
        tmp_path,
        sim,
        data=list(data),
        destinations=destinations,
        dest_names=("reports", "files"),
        extra_site=site,
    )


def expected_counts(files: Path, product: str) -> Counter[str]:
    """Rows each table must hold, counted in the delivered XML with plain lxml."""
    people, endpoints = ("representative", "customer") if product == "rs" else ("user", "endpoint")
    found: Counter[str] = Counter()
    for path in files.glob("*.xml"):
        root = etree.parse(str(path)).getroot()

        def every(name: str, under=root) -> list:
            return under.findall(f".//{{*}}{name}")

        found["session"] += 1
        events = every("event")
        found["session_event"] += len(events)
        for event in events:
            details = [
                c for c in event if etree.QName(c).localname in ("body", "filename", "filesize")
            ]
            encoded = [c for c in event if etree.QName(c).localname == "encoded_body"]
            files_in = every("file", event)
            sized = [f for f in files_in if f.get("size")]
            values = every("value", event)
            found["session_event_data"] += (
                len(details) + 2 * len(encoded) + len(files_in) + len(sized) + len(values)
            )
            found["system_information"] += len(every("category", event))
        found[people] += len(every("representative")) + len(every("presenter"))
        found[endpoints] += len(every("customer")) + len(every("attendee"))
        found["team"] += len(every("team"))
        found["custom_attribute"] += len(every("custom_attribute"))
    return found


@pytest.mark.parametrize("product", ["rs", "pa"])
def test_every_table_filled_from_the_reports_and_redelivery_changes_no_count(
    product, storage_url, tmp_path, rs_sim, pa_sim
):
    sim = rs_sim if product == "rs" else pa_sim
    data = ("session", "presentation") if product == "rs" else ("session",)
    config = sql_config(tmp_path, sim, storage_url, data=data)
    synced = run_btic("sync", "--all", "--config", str(config))
    assert synced.returncode == 0, synced.output
    found = counts(storage_url)
    wanted = expected_counts(tmp_path / "files", product)
    assert {t: n for t, n in found.items() if n} == {t: n for t, n in wanted.items() if n}
    empty = {t for t, n in found.items() if not n}
    if product == "rs":
        assert empty == {"user", "endpoint"}, found
    else:
        assert {"representative", "customer"} <= empty and found["user"] and found["endpoint"]
    if product == "rs":
        assert query(storage_url, "SELECT COUNT(*) FROM session WHERE type = 'presentation'")[0][0]
    else:
        assert query(storage_url, "SELECT COUNT(*) FROM session WHERE jump_group_type = 'shared'")[
            0
        ][0]
    # Re-delivered whole: every row replaced, none added.
    forced = run_btic(
        "transfer", "--config", str(config), "--site", "sim", "--dest", "reports",
        "--type", ",".join(data), "--since", "30d", "--force",
    )  # fmt: skip
    assert forced.returncode == 0, forced.output
    assert counts(storage_url) == found
    verified = run_btic("verify", "--config", str(config), "--dest", "reports")
    assert verified.returncode == 0, verified.output


def test_values_are_exact(storage_url, tmp_path, rs_sim):
    config = sql_config(tmp_path, rs_sim, storage_url, data=("session",))
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    sim_session = next(
        s for s in rs_sim.dataset.all() if s.report == "support" and s.index % 4 == 2
    )
    (row,) = query(
        storage_url,
        "SELECT id, start_time, end_time, host_name, lseq, public_site_id, public_site_name "
        "FROM session WHERE lsid = :lsid",
        lsid=sim_session.lsid,
    )
    session_id, start, end, host, lseq, site_id, site_name = row
    assert moment(start) == datetime.fromtimestamp(sim_session.start, timezone.utc)
    assert moment(end) == datetime.fromtimestamp(sim_session.end, timezone.utc)
    assert host == rs_sim.host
    assert isinstance(lseq, int) and isinstance(site_id, int) and site_name
    details = dict(
        query(
            storage_url,
            "SELECT d.name, d.value FROM session_event_data d JOIN session_event e "
            "ON d.session_event_id = e.id WHERE e.session_id = :id AND d.name = 'encoded_body'",
            id=session_id,
        )
    )
    decoded = base64.b64decode(details["encoded_body"]).decode()
    assert decoded.startswith("binary paste \x00\x07 from ")  # every character kept
    bodies = [
        value
        for (value,) in query(
            storage_url,
            "SELECT d.value FROM session_event_data d JOIN session_event e "
            "ON d.session_event_id = e.id WHERE e.session_id = :id AND d.name = 'body'",
            id=session_id,
        )
    ]
    assert decoded.replace("\x00", "\ufffd") in bodies
    assert any("& it's <urgent>" in body for body in bodies)
    names = {name for (name,) in query(storage_url, "SELECT display_name FROM representative")}
    assert "María García" in names  # unicode intact


def test_system_information_only_when_asked(tmp_path, rs_sim):
    url = f"sqlite:///{tmp_path / 'reports.db'}"
    config = sql_config(
        tmp_path, rs_sim, url, data=("session",), extra="should_store_system_information = false\n"
    )
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    found = counts(url)
    assert found["session"] and found["session_event"] and found["system_information"] == 0


def test_a_session_first_in_progress_then_closed_is_one_row(storage_url, tmp_path):
    destination = ConfiguredDestination("sqlserver", {"url": storage_url}, tmp_path)
    closed = sample_session("5e55f00d")
    open_one = Session.model_validate({**closed.model_dump(), "end_time": None})
    destination.session(open_one)
    destination.session(closed)
    rows = [
        (lsid, moment(end))
        for lsid, end in query(storage_url, "SELECT lsid, end_time FROM session")
    ]
    assert rows == [("5e55f00d", closed.end_time)]


def test_an_over_long_value_fails_that_session_only_with_its_reason(storage_url, tmp_path):
    destination = ConfiguredDestination("sqlserver", {"url": storage_url}, tmp_path)
    with pytest.raises(btic.DestinationError) as refused:
        destination.session(sample_session("long", external_key="K" * 300))
    assert refused.value.permanent
    assert "session long: session.external_key is 300 characters, longer than the 255" in str(
        refused.value
    )
    destination.session(sample_session("fine"))
    assert query(storage_url, "SELECT lsid FROM session") == [("fine",)]


def test_a_database_that_is_down_fails_the_run_once_and_the_next_run_finishes(
    tmp_path, rs_sim, postgres_url
):
    with __import__("socket").socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = f"postgresql+psycopg://btic:s3cret-pw@127.0.0.1:{closed_port}/nowhere"
    config = sql_config(tmp_path, rs_sim, down, data=("session",))
    failed = run_btic("sync", "--all", "--config", str(config))
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert any("cannot reach the database" in line and "nowhere" in line for line in errors)
    assert "Traceback" not in failed.output
    assert "s3cret-pw" not in failed.output  # the URL is shown with its password masked
    assert len(errors) <= 5, errors  # the destination is left alone after a streak
    url = new_postgres_database(postgres_url)
    config.write_text(config.read_text().replace(down, url))
    finished = run_btic("sync", "--all", "--config", str(config))
    assert finished.returncode == 0, finished.output
    assert counts(url)["session"] == len(list((tmp_path / "files").glob("*.xml")))


def test_a_changed_schema_is_reported_and_left_alone(tmp_path, rs_sim):
    import sqlite3

    url = f"sqlite:///{tmp_path / 'reports.db'}"
    config = sql_config(tmp_path, rs_sim, url, data=("session",))
    assert run_btic("check", "--config", str(config)).returncode == 0
    with sqlite3.connect(tmp_path / "reports.db") as db:
        db.execute("DROP INDEX ix_session_external_key")
        db.execute("ALTER TABLE session DROP COLUMN external_key")
    checked = run_btic("check", "--config", str(config))
    assert checked.returncode == 1
    assert "session: column external_key is missing" in checked.stdout
    assert "nothing was altered" in checked.stdout
    with sqlite3.connect(tmp_path / "reports.db") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(session)")]
    assert "external_key" not in columns
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as db:
        db.execute(
            "CREATE TABLE btic_schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        db.execute("INSERT INTO btic_schema_version VALUES (99, '2030-01-01')")
    config.write_text(config.read_text().replace(url, f"sqlite:///{newer}"))
    refused = run_btic("check", "--config", str(config))
    assert refused.returncode == 1
    assert "schema version 99, written by a newer btic-sqlserver" in refused.stdout


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_the_printed_ddl_creates_the_tables_the_plugin_accepts(dialect, tmp_path, rs_sim, request):
    printed = run_btic("sql", "schema", "--dialect", dialect)
    assert printed.returncode == 0, printed.output
    if dialect == "sqlite":
        import sqlite3

        url = f"sqlite:///{tmp_path / 'reports.db'}"
        with sqlite3.connect(tmp_path / "reports.db") as db:
            db.executescript(printed.stdout)
    elif dialect == "postgresql":
        url = new_postgres_database(request.getfixturevalue("postgres_url"))
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql(printed.stdout)
        engine.dispose()
    else:
        url = request.getfixturevalue("mariadb_odbc")()
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            for statement in printed.stdout.split(";\n"):
                if statement.strip():
                    connection.exec_driver_sql(statement)
        engine.dispose()
    assert set(TABLES) <= set(sa.inspect(sa.create_engine(url)).get_table_names())
    config = sql_config(tmp_path, rs_sim, url, data=("session",))
    synced = run_btic("sync", "--all", "--config", str(config))
    assert synced.returncode == 0, synced.output
    assert counts(url)["session"] > 0


def test_sql_server_ddl_and_statements():

    from btic_sqlserver import schema
    from btic_sqlserver.connection import make_engine

    printed = run_btic("sql", "schema", "--dialect", "mssql")
    assert printed.returncode == 0
    ddl = printed.stdout
    assert "id BIGINT NOT NULL IDENTITY" in ddl
    assert "lsid NVARCHAR(64) NOT NULL" in ddl
    assert "value NVARCHAR(max) NULL" in ddl
    assert "start_time DATETIME2 NULL" in ddl
    assert "CREATE TABLE [user]" in ddl  # a reserved word, quoted
    assert "CONSTRAINT uq_session_host_name_lsid UNIQUE (host_name, lsid)" in ddl
    assert "FOREIGN KEY(session_event_id) REFERENCES session_event (id)" in ddl
    assert "VARCHAR(" not in ddl.replace("NVARCHAR(", "")  # Unicode everywhere
    # Index keys within SQL Server's 900 bytes (2 bytes a character).
    for table in schema.metadata.sorted_tables:
        for index in [
            *table.indexes,
            *[c for c in table.constraints if isinstance(c, sa.UniqueConstraint)],
        ]:
            width = sum(2 * (getattr(column.type, "length", None) or 4) for column in index.columns)
            assert width <= 900, (table.name, index.name, width)
    # The statements a flush sends, as SQL Server's ODBC driver gets them: one
    # prepared INSERT per table (parameter arrays: one row's parameters each), and
    # IN lists far below the 2,100 parameters a statement may carry.
    from btic_sqlserver.writer import PreparedInsert, in_lists

    engine = make_engine(
        "mssql+pyodbc:///?odbc_connect=Driver%3D%7BODBC+Driver+18+for+SQL+Server%7D", "db"
    )
    assert engine.dialect.fast_executemany is True  # parameter arrays
    people = PreparedInsert.of(schema.user, engine.dialect)
    assert people.sql.startswith("INSERT INTO [user] (gs_number, session_id, user_id,")
    assert people.sql.endswith(" VALUES (" + ", ".join(["?"] * 14) + ")")
    assert "id," not in people.sql.replace("_id,", "")  # the key is the server's (IDENTITY)
    assert max(len(t.columns) for t in schema.metadata.sorted_tables) < 2100
    assert max(len(chunk) for chunk in in_lists(list(range(5000)))) + 1 < 2100


def test_the_guides_odbc_connection_string_becomes_a_url(tmp_path):
    from btic_sqlserver.connection import odbc_url

    text = (
        "Driver={ODBC Driver 18 for SQL Server};Server=db\\SQL;Database=btic;Trusted_Connection=yes"
    )
    url = sa.engine.make_url(odbc_url(text))
    assert url.drivername == "mssql+pyodbc"
    assert url.query["odbc_connect"] == text
    config = tmp_path / "btic.toml"
    config.write_text(
        '[sites.s]\nhost = "a.example.com"\nclient_id = "i"\nclient_secret = "x"\n'
        '[destinations.reports]\nplugin = "sqlserver"\n'
        'connection_string = "Server=db;Database=btic;Uid=btic;Pwd=s3cret"\n'
        '[schedules.q]\nevery = "1h"\n[[schedules.q.transfers]]\nsite = "s"\n'
        'destinations = ["reports"]\ndata = ["session"]\n'
    )
    config.chmod(0o600)
    checked = run_btic("check", "--offline", "--config", str(config))
    assert checked.returncode == 2
    assert (
        "destinations.reports: connection_string: an ODBC connection string names its driver"
        in checked.stderr
    )
    assert "s3cret" not in checked.output


def test_a_missing_driver_is_one_line_naming_the_package(tmp_path, rs_sim):
    config = sql_config(
        tmp_path, rs_sim, "postgresql+pg8000://btic:pw@127.0.0.1/x", data=("session",)
    )
    checked = run_btic("check", "--config", str(config))
    assert checked.returncode == 1
    (line,) = [line for line in checked.stdout.splitlines() if "destination reports" in line]
    assert "the database driver is not installed: install pg8000" in line
    assert "pw" not in line.replace("pg8000", "")


def test_verify_finds_missing_changed_and_unexpected_sessions(tmp_path, rs_sim):
    url = f"sqlite:///{tmp_path / 'reports.db'}"
    config = sql_config(tmp_path, rs_sim, url, data=("session",))
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    lsids = [lsid for (lsid,) in query(url, "SELECT lsid FROM session ORDER BY id")]
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        gone = connection.execute(
            sa.text("SELECT id FROM session WHERE lsid = :l"), {"l": lsids[0]}
        ).scalar()
        for table in ("representative", "customer", "team", "custom_attribute"):
            connection.execute(sa.text(f"DELETE FROM {table} WHERE session_id = :i"), {"i": gone})
        connection.execute(
            sa.text(
                "DELETE FROM session_event_data WHERE session_event_id IN "
                "(SELECT id FROM session_event WHERE session_id = :i)"
            ),
            {"i": gone},
        )
        connection.execute(
            sa.text(
                "DELETE FROM system_information WHERE session_event_id IN "
                "(SELECT id FROM session_event WHERE session_id = :i)"
            ),
            {"i": gone},
        )
        connection.execute(sa.text("DELETE FROM session_event WHERE session_id = :i"), {"i": gone})
        connection.execute(sa.text("DELETE FROM session WHERE id = :i"), {"i": gone})
        connection.execute(
            sa.text(
                "UPDATE session_event_data SET value = 'edited' WHERE id = (SELECT MIN(d.id) FROM "
                "session_event_data d JOIN session_event e ON d.session_event_id = e.id "
                "JOIN session s ON e.session_id = s.id WHERE s.lsid = :l)"
            ),
            {"l": lsids[1]},
        )
        connection.execute(
            sa.text(
                "INSERT INTO session (lsid, type, host_name) VALUES ('planted', 'support', 'elsewhere')"
            )
        )
    engine.dispose()
    found = run_btic("verify", "--config", str(config), "--dest", "reports")
    assert found.returncode == 1
    lines = found.stdout.splitlines()
    assert any(line.startswith("missing") and lsids[0] in line for line in lines), lines
    assert any(line.startswith("changed") and lsids[1] in line for line in lines), lines
    assert any(
        line.startswith("unexpected") and "session/elsewhere/planted" in line for line in lines
    )
    assert len(lines) == 3, lines


def test_two_processes_delivering_the_same_sessions_at_once(tmp_path, rs_sim, postgres_url):
    url = new_postgres_database(postgres_url)
    configs = []
    for name in ("one", "two"):
        home = tmp_path / name
        home.mkdir()
        configs.append(sql_config(home, rs_sim, url, data=("session", "presentation")))
    runs = [
        subprocess.Popen(
            [
                str(Path(sys.executable).with_name("btic")),
                "sync",
                "--config",
                str(c),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, out + err
    alone = tmp_path / "alone"
    alone.mkdir()
    reference = f"sqlite:///{alone / 'reports.db'}"
    assert (
        run_btic("sync", "--all", "--config", str(sql_config(alone, rs_sim, reference))).returncode
        == 0
    )
    assert counts(url) == counts(reference)


def test_a_value_the_database_refuses_fails_only_its_session_of_the_batch(
    tmp_path, rs_sim, postgres_url
):
    from hostile import report, session_xml

    url = new_postgres_database(postgres_url)
    config = sql_config(tmp_path, rs_sim, url, data=("session",))
    # Python cannot tell this one: public_site id is an INTEGER, and only the
    # database measures it.
    too_big = '<public_site id="99999999999">Default</public_site>'
    saved = tmp_path / "saved.xml"
    saved.write_bytes(
        report(session_xml("a1"), session_xml("b2", extra=too_big), session_xml("c3"))
    )
    command = ["import-xml", "--config", str(config), str(saved), "--dest", "reports"]
    imported = run_btic(*command, "--host", "old.example.com", "--json")
    assert imported.returncode == 1, imported.output
    summary = json.loads(imported.stdout)
    assert summary["tallies"], imported.output
    (row,) = summary["tallies"]
    assert (row["delivered"], row["failed"]) == (2, 1)
    (given_up,) = summary["given_up"]
    assert "session b2" in given_up and "out of range" in given_up
    assert sorted(lsid for (lsid,) in query(url, "SELECT lsid FROM session")) == ["a1", "c3"]
    again = run_btic(*command, "--host", "old.example.com", "--json")
    assert again.returncode == 0, again.output  # given up: not offered again
    assert not any(row["delivered"] or row["failed"] for row in json.loads(again.stdout)["tallies"])


def test_sql_copy_migrates_every_row_resumably_and_verifies_the_counts(
    tmp_path, rs_sim, postgres_url
):
    from btic_sqlserver.verification import stored_digest

    source = f"sqlite:///{tmp_path / 'reports.db'}"
    config = sql_config(tmp_path, rs_sim, source)
    assert run_btic("sync", "--all", "--config", str(config)).returncode == 0
    target = new_postgres_database(postgres_url)
    copied = run_btic("sql", "copy", "--config", str(config), "--from", "reports", "--to", target)
    assert copied.returncode == 0, copied.output
    assert counts(target) == counts(source)
    assert "session_event_data" in copied.stdout
    engines = sa.create_engine(source), sa.create_engine(target)
    with engines[0].connect() as old, engines[1].connect() as new:
        keys = old.execute(sa.text("SELECT host_name, lsid FROM session")).all()
        for host, lsid in keys:  # every value of every row, not only the counts
            assert stored_digest(new, host, lsid) == stored_digest(old, host, lsid), lsid
    # An interrupted copy: the target lacks some sessions; the rerun writes only those.
    with engines[1].begin() as new:
        lost = [lsid for (lsid,) in new.execute(sa.text("SELECT lsid FROM session LIMIT 5"))]
        ids = [i for (i,) in new.execute(sa.text("SELECT id FROM session LIMIT 5"))]
        for table in ("session_event_data", "system_information"):
            new.execute(
                sa.text(
                    f"DELETE FROM {table} WHERE session_event_id IN "
                    "(SELECT id FROM session_event WHERE session_id = ANY(:ids))"
                ),
                {"ids": ids},
            )
        for table in ("session_event", "representative", "customer", "team", "custom_attribute"):
            new.execute(sa.text(f"DELETE FROM {table} WHERE session_id = ANY(:ids)"), {"ids": ids})
        new.execute(sa.text("DELETE FROM session WHERE id = ANY(:ids)"), {"ids": ids})
    for engine in engines:
        engine.dispose()
    assert len(lost) == 5
    resumed = run_btic("sql", "copy", "--config", str(config), "--from", "reports", "--to", target)
    assert resumed.returncode == 0, resumed.output
    assert f"5 sessions copied, {len(keys) - 5} already there" in resumed.stderr
    assert counts(target) == counts(source)
    wrong = run_btic("sql", "copy", "--config", str(config), "--from", "files", "--to", target)
    assert wrong.returncode == 2
    assert "--from files: not a sqlserver destination" in wrong.stderr
    assert "those are: reports" in wrong.stderr


def test_the_guides_element_documents_fill_the_guides_columns(storage_url, tmp_path):
    """The RS and PA session documents written element by element from the API guides
    (tests/test_parse.py), not from the simulator, stored and read back column by column."""
    from test_parse import PA_SESSION, RS_SESSION, document, sessions

    [(rs, rs_xml)] = sessions(document(RS_SESSION, None))
    [(pa, pa_xml)] = sessions(document(PA_SESSION, None), product="pa", report="access")
    destination = ConfiguredDestination("sqlserver", {"url": storage_url}, tmp_path)
    destination.session(rs, rs_xml)
    destination.session(pa, pa_xml)
    [session] = query(
        storage_url,
        "SELECT type, duration, file_transfers, host_name, external_key, public_site_id, "
        "public_site_name, lseq, start_time, end_time FROM session WHERE lsid = :l",
        l=rs.lsid,
    )
    assert session[:8] == (
        "support", "00:30:00", 3, "support.example.com", "INC-7 & co", 1, "Default", 42,
    )  # fmt: skip
    assert moment(session[8]) == datetime(2016, 10, 1, 8, 0, tzinfo=timezone.utc)
    assert moment(session[9]) == datetime(2016, 10, 1, 8, 30, tzinfo=timezone.utc)
    reps = query(
        storage_url,
        "SELECT gs_number, user_id, user_name, display_name, public_display_name, display_number,"
        " public_ip, private_ip, is_owner, is_primary, duration, host_name, operating_system "
        "FROM representative ORDER BY gs_number",
    )
    assert reps == [
        (22, 5, "jdoe", "Jane Doe", "Jane", 7, "198.51.100.1", "10.1.1.1", 1, 1, 1800, "REP1",
         "Windows"),
        (23, 6, "asmith", "Alex", None, None, None, None, 0, 0, 60, None, None),
    ]  # fmt: skip
    assert query(
        storage_url,
        "SELECT gs_number, issue, issue_description, display_name, company_name, company_code, "
        "public_ip, private_ip, rpat_support, host_name, operating_system FROM customer",
    ) == [(11, "4", "Printer", "Peter P", "Example", "EX1", "203.0.113.5", "10.0.0.5", 0,
           "WS-1", "Windows 11")]  # fmt: skip
    assert sorted(query(storage_url, "SELECT team_id, name, is_primary FROM team")) == [
        (1, "Tier 1", 0),
        (2, "Tier 2", 1),
    ]
    assert query(storage_url, "SELECT display_name, code_name, value FROM custom_attribute") == [
        ("Cost Center", "cost_center", "CC-9")
    ]
    details = query(
        storage_url,
        "SELECT e.type, d.name, d.value FROM session_event_data d JOIN session_event e "
        "ON d.session_event_id = e.id JOIN session s ON e.session_id = s.id "
        "WHERE s.lsid = :l ORDER BY d.id",
        l=rs.lsid,
    )
    assert details[:2] == [
        ("Conference Member Added", "username", "jdoe"),
        ("Conference Member Added", "user_id", "5"),
    ]
    assert ("Chat Message", "body", "Hi <there>") in details
    assert ("Chat Message", "body", "bell \x07 and ☃") in details
    assert ("File Upload", "filename", "a.zip") in details
    assert ("File Upload", "filesize", "1234") in details
    assert ("File Upload", "file_size", "1234") in details
    [(category, information)] = query(
        storage_url, "SELECT category, information FROM system_information"
    )
    assert category == "Drives" and "<field>Percent Used</field>" in information
    assert "<row><field>D:\\</field><field>CD</field><field>0%</field></row>" in information
    # PA: user and endpoint, the jump group, a session still in progress
    [pa_row] = query(
        storage_url,
        "SELECT jump_group_id, jump_group_name, jump_group_type, end_time FROM session "
        "WHERE lsid = :l",
        l=pa.lsid,
    )
    assert pa_row == (1, "Production", "shared", None)
    from btic_sqlserver import schema

    engine = sa.create_engine(storage_url)
    with engine.connect() as connection:  # `user` is a reserved word: quoted per dialect
        users = connection.execute(
            sa.select(
                schema.user.c.user_name,
                schema.user.c.display_name,
                schema.user.c.is_owner,
                schema.user.c.is_primary,
            ).order_by(schema.user.c.gs_number)
        ).all()
    engine.dispose()
    # is_primary from the session's <primary_rep gsnumber="4" id="2">, as the PA guide has it
    assert [tuple(row) for row in users] == [("kchen", "Kai Chen", 1, 1), ("lee", "Lee", 0, 0)]
    assert query(storage_url, "SELECT host_name, operating_system FROM endpoint") == [
        ("srv-01", "Linux")
    ]


def test_import_xml_tells_a_pa_report_from_its_elements_and_refuses_a_contradiction(
    tmp_path, rs_sim
):
    """A PA report (built from the PA guide's element table) imported without --product
    fills PA's user and endpoint tables; --product rs, or an RS site, is refused."""
    from test_parse import PA_SESSION, document

    url = f"sqlite:///{tmp_path / 'reports.db'}"
    config = sql_config(tmp_path, rs_sim, url, data=("session",))
    closed = PA_SESSION.replace(
        "<end_time></end_time>", '<end_time timestamp="1467360600">x</end_time>'
    )
    saved = tmp_path / "access.xml"
    saved.write_bytes(document(closed, "https://www.beyondtrust.com/namespaces/API/reporting"))
    base = ["import-xml", "--config", str(config), str(saved), "--dest", "reports"]
    refused = run_btic(*base, "--host", "pra.example.com", "--product", "rs")
    assert refused.returncode == 1, refused.output
    assert (
        f"{saved}: a Privileged Access (pa) report (it has <jump_group>), not Remote Support "
        "(rs) as --product rs says; nothing delivered from it: give --product pa, or leave it "
        "out" in refused.stderr
    )
    by_site = run_btic(*base, "--site", "sim")  # the simulator here is an RS appliance
    assert by_site.returncode == 1, by_site.output
    assert "not Remote Support (rs) as site sim" in by_site.stderr
    imported = run_btic(*base, "--host", "pra.example.com")
    assert imported.returncode == 0, imported.output
    assert counts(url)["representative"] == counts(url)["customer"] == 0
    assert (counts(url)["user"], counts(url)["endpoint"]) == (2, 1)
    assert query(url, "SELECT jump_group_name FROM session") == [("Production",)]
