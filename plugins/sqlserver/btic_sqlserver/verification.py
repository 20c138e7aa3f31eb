"""``btic verify`` for the storage database: each session the ledger says was
delivered is still there, with the rows it was delivered as."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import sqlalchemy as sa

import btic
from btic_sqlserver import schema
from btic_sqlserver.reading import read_sessions, session_id
from btic_sqlserver.rows import digest_of, storable

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
            lsid, host = storable(item.item_key.id), storable(item.site.host)
            found = stored_digest(connection, host, lsid)
            place = f"{where} {location(host, lsid)}"
            if found is None:
                yield btic.VerifyFinding("missing", place, "no session row", item_key=item.item_key)
            elif item.sha256 is not None and found != item.sha256:
                yield btic.VerifyFinding(
                    "changed",
                    place,
                    "its rows differ from those delivered (sha256 of the values)",
                    item_key=item.item_key,
                )


def stored_digest(connection: sa.Connection, host_name: str, lsid: str) -> str | None:
    """The digest of a session's rows as the database holds them; None when absent."""
    found = session_id(connection, host_name, lsid)
    if found is None:
        return None
    (rows,) = read_sessions(connection, [found])
    return digest_of(rows)


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
