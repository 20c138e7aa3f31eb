"""Sessions read back from the tables as the rows they were written as: for
``btic verify`` (their digest) and ``btic sql copy`` (written again elsewhere)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from btic_sqlserver import schema
from btic_sqlserver.rows import EventRows, Row, SessionRows


def session_id(connection: sa.Connection, host_name: str, lsid: str) -> Any | None:
    session = schema.session
    return connection.execute(
        sa.select(session.c.id).where(session.c.host_name == host_name, session.c.lsid == lsid)
    ).scalar()


def read_sessions(connection: sa.Connection, ids: Sequence[Any]) -> list[SessionRows]:
    """The sessions with these ids, each with its child rows in insertion order.

    :param ids: at most a few hundred (one ``IN`` list per table).
    """
    session, event = schema.session, schema.session_event
    found = {
        row["id"]: SessionRows(
            session=dict(row),
            events=[],
            children={table: [] for table in schema.SESSION_CHILDREN},
        )
        for row in connection.execute(
            sa.select(session).where(session.c.id.in_(ids)).order_by(session.c.id)
        ).mappings()
    }
    if not found:
        return []
    events: dict[Any, EventRows] = {}
    for row in connection.execute(
        sa.select(event).where(event.c.session_id.in_(ids)).order_by(event.c.id)
    ).mappings():
        events[row["id"]] = EventRows(event=dict(row))
        found[row["session_id"]].events.append(events[row["id"]])
    its_events = sa.select(event.c.id).where(event.c.session_id.in_(ids))
    for table in schema.EVENT_CHILDREN:
        for row in connection.execute(
            sa.select(table).where(table.c.session_event_id.in_(its_events)).order_by(table.c.id)
        ).mappings():
            owner = events[row["session_event_id"]]
            rows: list[Row] = (
                owner.data if table is schema.session_event_data else owner.system_information
            )
            rows.append(dict(row))
    for table in schema.SESSION_CHILDREN:
        for row in connection.execute(
            sa.select(table).where(table.c.session_id.in_(ids)).order_by(table.c.id)
        ).mappings():
            found[row["session_id"]].children[table].append(dict(row))
    return list(found.values())


__all__ = ["read_sessions", "session_id"]
