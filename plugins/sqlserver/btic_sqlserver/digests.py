"""The signed digests of the runs that wrote to the storage database, kept in it
(``btic_digest``) beside the session tables: one row each, never replaced.

A table of btic's own, apart from the Integration Client's schema (whose tables
and version it does not touch), created the first time a digest is stored.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

import btic

metadata = sa.MetaData()

digest_table = sa.Table(
    "btic_digest",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("signature", sa.LargeBinary, nullable=False),
)


def store(engine: sa.Engine, digest: btic.Digest) -> None:
    """Insert ``digest``; the same one again is fine, other bytes under its name are not.

    :raises btic.DestinationError: when a different digest has its name.
    """
    metadata.create_all(engine, checkfirst=True)
    with engine.begin() as connection:
        found = connection.execute(
            sa.select(digest_table.c.body).where(digest_table.c.name == digest.name)
        ).scalar()
        if found is None:
            connection.execute(
                digest_table.insert().values(
                    name=digest.name, body=digest.body, signature=digest.signature_file()
                )
            )
        elif bytes(found) != digest.body:
            raise btic.DestinationError(
                f"a different digest named {digest.name} is stored already; not replaced"
            )


def read(engine: sa.Engine) -> Iterator[btic.Digest]:
    """Every digest stored (none before the first)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(digest_table.name):
            return
        rows = connection.execute(sa.select(digest_table).order_by(digest_table.c.name))
        for row in rows:
            yield btic.Digest.read(row.name, bytes(row.body), bytes(row.signature))
