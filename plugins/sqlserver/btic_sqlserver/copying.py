"""``btic sql copy``: a storage database copied to another server (the guide's
"Migrate Integration Client Data to a New MS SQL Server"), in batches.

Each batch of sessions is written to the target in one transaction, whole, by
the same writer a transfer uses; sessions the target already holds are left
alone, so an interrupted copy resumes where it stopped. The copy is then
verified by the row count of every table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from btic_sqlserver import schema
from btic_sqlserver.reading import read_sessions
from btic_sqlserver.rows import SessionRows
from btic_sqlserver.writer import Writer

BATCH = 500


@dataclass
class CopyReport:
    """What a copy did, and how the two databases compare afterwards.

    :ivar copied: sessions written to the target by this copy.
    :ivar present: sessions the target held already (an earlier, interrupted copy).
    :ivar counts: table -> (rows in the source, rows in the target).
    """

    copied: int = 0
    present: int = 0
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def differing(self) -> list[str]:
        return [table for table, (source, target) in self.counts.items() if source != target]


def copy_database(
    source: sa.Engine, target: Writer, *, progress: Callable[[int, int], None] | None = None
) -> CopyReport:
    """Copy every session of ``source`` that ``target`` lacks, then count.

    :param progress: called with (sessions done, sessions in the source) after each batch.
    """
    target.prepare()
    report = CopyReport()
    session = schema.session
    with source.connect() as reading:
        total = reading.execute(sa.select(sa.func.count()).select_from(session)).scalar_one()
        last = None
        while True:
            query = sa.select(session.c.id).order_by(session.c.id).limit(BATCH)
            if last is not None:
                query = query.where(session.c.id > last)
            ids = reading.execute(query).scalars().all()
            if not ids:
                break
            last = ids[-1]
            batch = read_sessions(reading, ids)
            held = _held(target.engine, [_key(rows) for rows in batch])
            missing = [rows for rows in batch if _key(rows) not in held]
            if missing:
                target.replace(missing)
            report.copied += len(missing)
            report.present += len(batch) - len(missing)
            if progress is not None:
                progress(report.copied + report.present, total)
    source_counts, target_counts = row_counts(source), row_counts(target.engine)
    report.counts = {t: (source_counts[t], target_counts[t]) for t in source_counts}
    return report


def _key(rows: SessionRows) -> tuple[str, str]:
    return rows.session["host_name"], rows.session["lsid"]


def _held(engine: sa.Engine, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    session = schema.session
    hosts = {host for host, _ in keys}
    held: set[tuple[str, str]] = set()
    with engine.connect() as connection:
        for host in hosts:
            lsids = [lsid for h, lsid in keys if h == host]
            rows = connection.execute(
                sa.select(session.c.lsid).where(
                    session.c.host_name == host, session.c.lsid.in_(lsids)
                )
            )
            held.update((host, lsid) for (lsid,) in rows)
    return held


def row_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows in each storage table (the schema version table aside)."""
    with engine.connect() as connection:
        return {
            table.name: connection.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
            for table in schema.metadata.sorted_tables
            if table is not schema.schema_version
        }


__all__ = ["BATCH", "CopyReport", "copy_database", "row_counts"]
