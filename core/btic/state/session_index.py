"""The sessions btic archived, searchable: the part of the state database ``btic find``
reads (:mod:`btic.summaries` says what is kept, and why).

Summaries are written in groups, like the ledger's outcomes: a session run hands
over thousands of reports a minute, and one transaction each would be most of its
time. A group is written when it is full, and before anything reads the index.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, select, tuple_
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

from btic.state.schema import session_terms, sessions_index
from btic.state.values import aware, fit_column
from btic.summaries import TERM_LENGTH, SessionSummary, TermKind, fold

#: Summaries waiting for their group's transaction, at most.
GROUP = 500
#: Rows per statement when a group is written or replaced.
_CHUNK = 400


@dataclass(frozen=True)
class TermFilter:
    """One search term: ``kind`` equal to ``value`` (folded), or starting with it."""

    kind: TermKind
    value: str
    prefix: bool = False

    @classmethod
    def parse(cls, kind: TermKind, text: str) -> TermFilter:
        """``text`` as typed: a trailing ``*`` asks for a prefix."""
        prefix = text.endswith("*")
        return cls(kind, fold(text.rstrip("*")), prefix)


@dataclass(frozen=True)
class SessionQuery:
    """What ``btic find`` looks for; every given field must match.

    :ivar since: sessions that ended at or after this time.
    :ivar until: sessions that started before this time.
    :ivar offset: skip this many matches (a page further on).
    :ivar oldest_first: by end time ascending; the latest first otherwise.
    """

    site: str | None = None
    lsid: str | None = None
    external_key: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    terms: tuple[TermFilter, ...] = ()
    limit: int = 1000
    offset: int = 0
    oldest_first: bool = False


@dataclass(frozen=True)
class IndexedSession:
    """A session as the index has it."""

    site: str
    lsid: str
    host: str
    product: str
    start_time: datetime | None
    end_time: datetime | None
    external_key: str | None
    people: tuple[str, ...]
    customers: tuple[str, ...]
    #: the ledger keys of its items
    item_keys: tuple[str, ...]


class SessionIndex:
    """The part of :class:`~btic.state.StateStore` that keeps the session index."""

    engine: Engine
    _write_lock: threading.Lock
    #: the summaries waiting for their group's transaction, by (site, lsid)
    _summaries: dict[tuple[str, str], SessionSummary]

    def index_session(self, site: str, summary: SessionSummary) -> None:
        """Keep ``summary`` as site ``site``'s (replacing an earlier one), with the
        next group."""
        with self._write_lock:
            self._summaries[(site, summary.lsid)] = summary
            full = len(self._summaries) >= GROUP
        if full:
            self.flush_index()

    def flush_index(self) -> None:
        """Write the waiting summaries, in one transaction."""
        with self._write_lock:
            if not self._summaries:
                return
            waiting = list(self._summaries.items())
            self._summaries.clear()
            with self.engine.begin() as connection:
                _replace(connection, waiting)

    def find_sessions(self, query: SessionQuery) -> list[IndexedSession]:
        """The sessions matching ``query`` in its order, at most ``query.limit``."""
        self.flush_index()
        with self.engine.connect() as connection:
            statement = _select(query, row_values=self.engine.dialect.name != "mssql")
            return [_indexed(row) for row in connection.execute(statement)]


def _replace(connection: Connection, waiting: list[tuple[tuple[str, str], SessionSummary]]) -> None:
    for start in range(0, len(waiting), _CHUNK):
        chunk = waiting[start : start + _CHUNK]
        by_site: dict[str, list[str]] = {}
        for (site, lsid), _ in chunk:
            by_site.setdefault(site, []).append(fit_column(lsid, 255))
        for site, lsids in by_site.items():
            for table in (session_terms, sessions_index):
                connection.execute(
                    delete(table).where(and_(table.c.site == site, table.c.lsid.in_(lsids)))
                )
        rows = [_session_row(site, summary) for (site, _), summary in chunk]
        connection.execute(sessions_index.insert(), rows)
        terms = [
            {"site": site, "lsid": fit_column(s.lsid, 255), "kind": kind.value, "term": term}
            for (site, _), s in chunk
            for kind, term in sorted(s.terms)
        ]
        if terms:
            connection.execute(session_terms.insert(), terms)


def _session_row(site: str, summary: SessionSummary) -> dict[str, Any]:
    return {
        "site": site,
        "lsid": fit_column(summary.lsid, 255),
        "host": fit_column(summary.host, 255),
        "product": summary.product,
        "start_time": summary.start_time,
        "end_time": summary.end_time,
        "external_key": (
            None if summary.external_key is None else fit_column(summary.external_key, 255)
        ),
        "people": "\n".join(summary.people),
        "customers": "\n".join(summary.customers),
        "item_keys": "\n".join(summary.item_keys),
    }


def _select(query: SessionQuery, *, row_values: bool = True) -> Select[Any]:
    """The index's statement for ``query``.

    :param row_values: each term as ``(site, lsid) IN (...)``: the matches are
        deduplicated as keys before any session row is read, so a prefix that
        matches 22,000 of a million sessions answers in tens of milliseconds
        (a join would read and sort every matching row). SQL Server has no row
        values; there each term is a join, and the rows are made distinct.
    """
    s = sessions_index
    statement = select(s)
    for index, term in enumerate(query.terms):
        t = session_terms.alias(f"t{index}")
        condition = t.c.kind == term.kind.value
        if term.prefix:
            # A range on the index, the same on every database (LIKE's case rules differ).
            end = term.value + "\U0010ffff"
            condition = and_(condition, t.c.term >= term.value, t.c.term < end)
        else:
            condition = and_(condition, t.c.term == term.value[:TERM_LENGTH])
        if row_values:
            matching = select(t.c.site, t.c.lsid).where(condition)
            statement = statement.where(tuple_(s.c.site, s.c.lsid).in_(matching))
        else:
            statement = statement.join(
                t, and_(t.c.site == s.c.site, t.c.lsid == s.c.lsid, condition)
            ).distinct()
    if query.site is not None:
        statement = statement.where(s.c.site == query.site)
    if query.lsid is not None:
        statement = statement.where(s.c.lsid == query.lsid)
    if query.external_key is not None:
        statement = statement.where(s.c.external_key == query.external_key)
    if query.since is not None:
        statement = statement.where(s.c.end_time >= query.since)
    if query.until is not None:
        statement = statement.where(s.c.start_time < query.until)
    by_end = s.c.end_time.asc() if query.oldest_first else s.c.end_time.desc()
    order = (by_end, s.c.lsid)
    return statement.order_by(*order).limit(query.limit).offset(query.offset)


def _indexed(row: Any) -> IndexedSession:
    return IndexedSession(
        site=row.site,
        lsid=row.lsid,
        host=row.host,
        product=row.product,
        start_time=aware(row.start_time),
        end_time=aware(row.end_time),
        external_key=row.external_key,
        people=tuple(p for p in (row.people or "").split("\n") if p),
        customers=tuple(c for c in (row.customers or "").split("\n") if c),
        item_keys=tuple(k for k in (row.item_keys or row.lsid).split("\n") if k),
    )
