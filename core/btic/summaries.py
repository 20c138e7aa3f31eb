"""What ``btic find`` searches: a session's summary, recorded when it is delivered.

A search must answer from btic's own state database, whatever the destinations
are (a file share, a bucket), without reading any report back. So when a session
report is delivered, btic keeps its times, its external key and, as search
terms, who took part and which machines: every representative's and customer's
name, username and gsnumber, and every host name (the endpoint's, the
representative's). Terms are kept folded (case and Unicode width) so a search
is an exact or prefix match on an index, fast at a million sessions.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from btic.appliance.model import Session


class TermKind(str, Enum):
    """What a search term names."""

    #: a representative or user: display names, username, gsnumber
    PERSON = "person"
    #: a customer or endpoint: name, username, company, gsnumber
    CUSTOMER = "customer"
    #: a machine's host name (the endpoint's, or a representative's)
    HOST = "host"

    def __str__(self) -> str:
        return str(self.value)


#: The longest term kept (a longer value is cut there; a search for it still
#: matches as a prefix).
TERM_LENGTH = 200


@dataclass(frozen=True)
class SessionSummary:
    """The fields of one session that a search reads."""

    lsid: str
    host: str
    product: str
    start_time: datetime | None
    end_time: datetime | None
    external_key: str | None
    #: who took part, for display: ``display name (username)`` each
    people: tuple[str, ...]
    customers: tuple[str, ...]
    terms: frozenset[tuple[TermKind, str]]
    #: the ledger keys of its items (the lsid; ``lsid#instance`` of numbered recordings)
    item_keys: tuple[str, ...] = ()


def fold(value: str) -> str:
    """A term as it is stored and searched: NFKC, case-folded, trimmed, cut to
    :data:`TERM_LENGTH`."""
    return unicodedata.normalize("NFKC", value).casefold().strip()[:TERM_LENGTH]


def summarize(session: Session) -> SessionSummary:
    """The summary of ``session`` (its report's fields; nothing else is read)."""
    terms: set[tuple[TermKind, str]] = set()

    def add(kind: TermKind, *values: object) -> None:
        for value in values:
            if value is None:
                continue
            text = fold(str(value))
            if text:
                terms.add((kind, text))

    people = []
    for rep in session.representatives:
        add(
            TermKind.PERSON,
            rep.display_name,
            rep.public_display_name,
            rep.private_display_name,
            rep.username,
            rep.gsnumber,
        )
        add(TermKind.HOST, rep.hostname)
        shown = rep.display_name or rep.public_display_name or rep.username or ""
        with_username = rep.username and shown != rep.username
        people.append(f"{shown} ({rep.username})" if with_username else shown)
    if session.primary_rep is not None:
        add(TermKind.PERSON, session.primary_rep.name, session.primary_rep.gsnumber)
    customers = []
    for customer in session.customers:
        info = customer.info
        add(
            TermKind.CUSTOMER,
            customer.username,
            customer.gsnumber,
            info.name if info else None,
            info.company if info else None,
        )
        add(TermKind.HOST, customer.hostname)
        name = info.name if info else None
        customers.append(name or customer.username or customer.hostname or "")
    if session.primary_customer is not None:
        add(TermKind.CUSTOMER, session.primary_customer.name, session.primary_customer.gsnumber)
    links = (*session.command_shell_recordings, *session.show_my_screen_recordings)
    numbered = {link.instance for link in links}
    return SessionSummary(
        lsid=session.lsid,
        host=session.host,
        product=session.product,
        start_time=session.start_time,
        end_time=session.end_time,
        external_key=session.external_key,
        people=tuple(p for p in people if p),
        customers=tuple(c for c in customers if c),
        terms=frozenset(terms),
        item_keys=(session.lsid, *sorted({f"{session.lsid}#{n}" for n in numbered})),
    )
