"""``btic verify`` for the storage database: each session the ledger says was
delivered is still there, with the rows it was delivered as."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

import btic
from btic_sqlserver import schema
from btic_sqlserver.rows import digest, storable

_PREFIX = "session/"


def location(host_name: str, lsid: str) -> str:
    """Where a session is, as deliveries and ``on_list`` name it."""
    return f"{_PREFIX}{host_name}/{lsid}"


def findings(
    engine: sa.Engine, items: Iterable[btic.StoredItem], where: str
) -> Iterator[btic.VerifyFinding]:
    """A finding for each item missing from the tables or whose rows changed."""
    with engine.connect() as connection:
        for item in items:
            lsid, host = storable(item.item_key), storable(item.site.host)
            found = stored_digest(connection, host, lsid)
            place = f"{where} {location(host, lsid)}"
            if found is None:
                yield btic.VerifyFinding("missing", place, "no session row", item_key=lsid)
            elif item.sha256 is not None and found != item.sha256:
                yield btic.VerifyFinding(
                    "changed",
                    place,
                    "its rows differ from those delivered (sha256 of the values)",
                    item_key=lsid,
                )


def stored_digest(connection: sa.Connection, host_name: str, lsid: str) -> str | None:
    """The digest of a session's rows as the database holds them; None when absent."""
    session = schema.session
    row = (
        connection.execute(
            sa.select(session).where(session.c.host_name == host_name, session.c.lsid == lsid)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    session_id = row["id"]
    event = schema.session_event
    events = (
        connection.execute(
            sa.select(event).where(event.c.session_id == session_id).order_by(event.c.id)
        )
        .mappings()
        .all()
    )
    by_event: dict[Any, tuple[list[Any], list[Any]]] = {e["id"]: ([], []) for e in events}
    its_events = sa.select(event.c.id).where(event.c.session_id == session_id)
    for position, table in enumerate(schema.EVENT_CHILDREN):
        children = connection.execute(
            sa.select(table).where(table.c.session_event_id.in_(its_events)).order_by(table.c.id)
        ).mappings()
        for child in children:
            by_event[child["session_event_id"]][position].append(child)
    others = {
        table.name: connection.execute(
            sa.select(table).where(table.c.session_id == session_id).order_by(table.c.id)
        )
        .mappings()
        .all()
        for table in schema.SESSION_CHILDREN
    }
    return digest(
        row,
        [(e, by_event[e["id"]][0], by_event[e["id"]][1]) for e in events],
        others,
    )


def locations(engine: sa.Engine) -> Iterator[str]:
    """Every session the tables hold, streamed."""
    session = schema.session
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=1000).execute(
            sa.select(session.c.host_name, session.c.lsid)
        )
        for host_name, lsid in result:
            yield location(host_name, lsid)


__all__ = ["findings", "location", "locations", "stored_digest"]
