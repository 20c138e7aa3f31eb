"""One session report as the rows of the storage tables.

:func:`session_rows` maps the typed report onto the guides' columns; nothing
here touches a database, so the mapping is tested on its own and the writer
only inserts. :func:`digest` is the fingerprint ``btic verify`` compares: the
same for the rows as built here and as read back from any database.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from lxml import etree

import btic
from btic import Customer, Event, Representative, Session, SystemInfoCategory
from btic_sqlserver import schema

Row = dict[str, Any]


@dataclass
class EventRows:
    """One ``session_event`` row and the rows that hang off it."""

    event: Row
    data: list[Row] = field(default_factory=list)
    system_information: list[Row] = field(default_factory=list)


@dataclass
class SessionRows:
    """Every row one session becomes, keys to parents not yet filled in."""

    session: Row
    events: list[EventRows]
    #: child table -> its rows (people, endpoints, teams, custom attributes)
    children: dict[sa.Table, list[Row]]

    def count(self) -> int:
        return (
            1
            + sum(1 + len(e.data) + len(e.system_information) for e in self.events)
            + sum(len(rows) for rows in self.children.values())
        )


def session_rows(session: Session, *, system_information: bool = True) -> SessionRows:
    """The rows of ``session``.

    :param system_information: fill ``system_information`` (the plugin's
        ``should_store_system_information``).
    :raises btic.DestinationError: (permanent) a value longer than its column.
    """
    product = session.product
    rows = SessionRows(
        session={
            "lsid": session.lsid,
            "type": session.session_type,
            "start_time": _utc(session.start_time),
            "end_time": _utc(session.end_time),
            "duration": session.duration,
            "file_transfers": session.file_transfer_count,
            "host_name": session.host,
            "external_key": session.external_key,
            "public_site_id": session.public_site.id if session.public_site else None,
            "public_site_name": session.public_site.name if session.public_site else None,
            "lseq": session.lseq,
            "jump_group_id": session.jump_group.id if session.jump_group else None,
            "jump_group_name": session.jump_group.name if session.jump_group else None,
            "jump_group_type": session.jump_group.type if session.jump_group else None,
        },
        events=[_event_rows(event, system_information) for event in session.events],
        children={
            schema.PEOPLE[product]: [_person(rep) for rep in session.representatives],
            schema.ENDPOINTS[product]: [_endpoint(c) for c in session.customers],
            schema.team: [
                {"team_id": t.id, "name": t.name, "is_primary": int(t.primary_team)}
                for t in session.teams
            ],
            schema.custom_attribute: [
                {"display_name": a.display_name, "code_name": a.code_name, "value": a.value}
                for a in session.custom_attributes
            ],
        },
    )
    _storable(rows)
    _check_lengths(session.lsid, rows)
    return rows


def _all_rows(rows: SessionRows) -> list[tuple[sa.Table, list[Row]]]:
    return [
        (schema.session, [rows.session]),
        (schema.session_event, [e.event for e in rows.events]),
        (schema.session_event_data, [d for e in rows.events for d in e.data]),
        (schema.system_information, [s for e in rows.events for s in e.system_information]),
        *rows.children.items(),
    ]


def storable(text: str) -> str:
    """NUL as U+FFFD: XML cannot carry it, but a decoded value can, and PostgreSQL's
    text refuses it."""
    return text.replace("\x00", "\ufffd")


def _storable(rows: SessionRows) -> None:
    for _table, table_rows in _all_rows(rows):
        for row in table_rows:
            for name, value in row.items():
                if isinstance(value, str) and "\x00" in value:
                    row[name] = storable(value)


def _utc(moment: datetime | None) -> datetime | None:
    # Stored without a zone, always UTC (the guides' "Date is returned in UTC format").
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _person(rep: Representative) -> Row:
    return {
        "gs_number": rep.gsnumber,
        "user_id": rep.id,
        "user_name": rep.username,
        "display_name": rep.private_display_name or rep.display_name,
        "public_display_name": rep.public_display_name,
        "display_number": rep.display_number,
        "public_ip": rep.public_ip,
        "private_ip": rep.private_ip,
        "is_owner": int(rep.session_owner),
        "is_primary": int(rep.primary_rep),
        "duration": rep.seconds_involved,
        "host_name": rep.hostname,
        "operating_system": rep.os,
    }


def _endpoint(customer: Customer) -> Row:
    info = customer.info
    return {
        "gs_number": customer.gsnumber,
        "issue": info.issue if info else None,
        "issue_description": info.details if info else None,
        # The guide: the name given on the form, else the logged-in user's.
        "display_name": (info.name if info and info.name else None) or customer.username,
        "company_name": info.company if info else None,
        "company_code": info.company_code if info else None,
        "public_ip": customer.public_ip,
        "private_ip": customer.private_ip,
        "rpat_support": int(customer.rpat_support),
        "host_name": customer.hostname,
        "operating_system": customer.os,
    }


def _event_rows(event: Event, system_information: bool) -> EventRows:
    performed_by, destination = event.performed_by, event.destination
    rows = EventRows(
        event={
            "type": event.event_type,
            "event_time": _utc(event.timestamp),
            "performed_by": performed_by.name if performed_by else None,
            "performed_by_type": performed_by.type if performed_by else None,
            "destination": destination.name if destination else None,
            "destination_type": destination.type if destination else None,
        }
    )
    details: list[tuple[str, str]] = []
    if event.body is not None and event.body_encoded:
        # <encoded_body> arrives decoded: the chat text as typed. A NUL cannot be
        # stored in every database's text (PostgreSQL refuses it), so ``body`` shows
        # it as U+FFFD and ``encoded_body`` keeps every character, base64 of UTF-8.
        details.append(("body", event.body))
        details.append(("encoded_body", base64.b64encode(event.body.encode()).decode()))
    elif event.body is not None:
        details.append(("body", event.body))
    if event.filename is not None:
        details.append(("filename", event.filename))
    if event.filesize is not None:
        details.append(("filesize", str(event.filesize)))
    for transferred in event.files:
        details.append(("file", transferred.name))
        if transferred.size is not None:
            details.append(("file_size", str(transferred.size)))
    details.extend((value.name, value.value) for value in event.data)
    rows.data = [{"name": name, "value": value} for name, value in details]
    if system_information:
        rows.system_information = [
            {"category": category.name, "information": _information(category)}
            for category in event.system_information
        ]
    return rows


def _information(category: SystemInfoCategory) -> str:
    """The category's ``<field>`` headers and rows, as the report carries them."""
    root = etree.Element("information")
    description = etree.SubElement(root, "description")
    for name in category.fields:
        etree.SubElement(description, "field").text = name
    data = etree.SubElement(root, "data")
    for cells in category.rows:
        row = etree.SubElement(data, "row")
        for cell in cells:
            etree.SubElement(row, "field").text = cell
    return "".join(etree.tostring(child, encoding="unicode") for child in root)


#: table -> {text column: its length}, the values every session is checked against.
_LIMITS: dict[sa.Table, dict[str, int]] = {
    table: {
        c.name: c.type.length
        for c in table.columns
        if isinstance(c.type, sa.String) and c.type.length is not None
    }
    for table in schema.metadata.sorted_tables
}


def _check_lengths(lsid: str, rows: SessionRows) -> None:
    for table, table_rows in _all_rows(rows):
        limits = _LIMITS[table]
        for row in table_rows:
            for name, limit in limits.items():
                value = row.get(name)
                if isinstance(value, str) and len(value) > limit:
                    raise btic.DestinationError(
                        f"session {lsid}: {table.name}.{name} is {len(value)} characters, "
                        f"longer than the {limit} the column holds",
                        permanent=True,
                    )


# -- the digest btic verify compares -------------------------------------------------


def digest_of(rows: SessionRows) -> str:
    """sha256 of a session's values, table by table and row by row in insertion
    order, leaving out the keys a database assigns: the same for the rows as
    built here and as read back from any database."""
    hasher = hashlib.sha256()

    def add(table: sa.Table, table_rows: Iterable[Row]) -> None:
        columns = [c.name for c in table.columns if c.name not in _KEYS]
        for row in table_rows:
            hasher.update(table.name.encode())
            for name in columns:
                hasher.update(b"\x1f" + _canonical(row.get(name)))
            hasher.update(b"\x1e")

    add(schema.session, [rows.session])
    for event in rows.events:
        add(schema.session_event, [event.event])
        add(schema.session_event_data, event.data)
        add(schema.system_information, event.system_information)
    for table in schema.SESSION_CHILDREN:
        add(table, rows.children.get(table, ()))
    return hasher.hexdigest()


_KEYS = frozenset({"id", "session_id", "session_event_id"})


def _canonical(value: Any) -> bytes:
    if value is None:
        return b"\x00"
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat().encode()
    if isinstance(value, bool):
        return str(int(value)).encode()
    return str(value).encode()


__all__ = ["EventRows", "Row", "SessionRows", "digest_of", "session_rows", "storable"]
