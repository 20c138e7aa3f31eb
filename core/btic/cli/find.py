"""``btic find``: sessions in the archive, from the state database alone."""

from __future__ import annotations

import csv
import sys
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from btic.cli.base import Runtime, config_option, echo_json, promise_json
from btic.types import DataType

if TYPE_CHECKING:
    from btic.find import FoundSession


def moment(value: str | None, option: str) -> datetime | None:
    from btic.cli.transfers import parse_moment

    if value is None:
        return None
    moment = parse_moment(value, option)
    if isinstance(moment, timedelta):
        return datetime.now(timezone.utc) - moment
    return moment


@click.command("find")
@config_option
@click.option("--site", help="Sessions of this site.")
@click.option("--lsid", help="The session with this lsid.")
@click.option("--external-key", help="Sessions with this external key.")
@click.option(
    "--person",
    "people",
    multiple=True,
    help="A representative or user: display name, username or gsnumber (a trailing * "
    "matches the start; repeatable, all must match).",
)
@click.option(
    "--customer",
    "customers",
    multiple=True,
    help="A customer or endpoint: name, username, company or gsnumber (a trailing * "
    "matches the start; repeatable).",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="A machine's host name: the endpoint's or a representative's (a trailing * "
    "matches the start; repeatable).",
)
@click.option("--since", help="Sessions that ended at or after: ISO time, or a period back (7d).")
@click.option("--until", help="Sessions that started before: ISO time, or a period back.")
@click.option(
    "--type",
    "data_types",
    multiple=True,
    type=click.Choice(sorted(dt.value for dt in DataType if dt is not DataType.BACKUP)),
    help="Only sessions with an item of this data type, and only those items (repeatable).",
)
@click.option("--dest", "destinations", multiple=True, help="Only items at this destination.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, one row per item.")
@click.pass_obj
def find_command(
    runtime: Runtime,
    config_path: Path | None,
    site: str | None,
    lsid: str | None,
    external_key: str | None,
    people: tuple[str, ...],
    customers: tuple[str, ...],
    hosts: tuple[str, ...],
    since: str | None,
    until: str | None,
    data_types: tuple[str, ...],
    destinations: tuple[str, ...],
    limit: int,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Sessions in the archive: who, when, which machines, and where each item is.

    Answers from the state database (the ledger and the summaries recorded when
    each session was delivered), whatever the destinations are; the latest first.
    """
    from btic.find import find
    from btic.state import StateStore, failures_reported
    from btic.state.session_index import SessionQuery, TermFilter
    from btic.summaries import TermKind

    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    promise_json(as_json)
    config = runtime.load_config(config_path, secrets=False)
    terms = tuple(
        TermFilter.parse(kind, text)
        for kind, texts in (
            (TermKind.PERSON, people),
            (TermKind.CUSTOMER, customers),
            (TermKind.HOST, hosts),
        )
        for text in texts
    )
    query = SessionQuery(
        site=site,
        lsid=lsid,
        external_key=external_key,
        since=moment(since, "--since"),
        until=moment(until, "--until"),
        terms=terms,
        limit=limit,
    )
    with failures_reported(config.state_url):
        state = StateStore(config.state_url)
        try:
            found = find(
                state,
                query,
                data_types=[DataType(d) for d in data_types],
                destinations=destinations,
            )
        finally:
            state.close()
    if as_json:
        echo_json(
            {
                "ok": True,
                "count": len(found),
                "limited": len(found) >= limit,
                "sessions": [f.as_json() for f in found],
            }
        )
        return
    if as_csv:
        _write_csv(found)
        return
    _print_lines(found, limit)


_CSV_FIELDS = [
    "site", "lsid", "start_time", "end_time", "external_key", "people", "customers",
    "destination", "data_type", "item_key", "status", "location", "size", "sha256",
    "recorded_at",
]  # fmt: skip


def _write_csv(found: list[FoundSession]) -> None:
    writer = csv.DictWriter(sys.stdout, _CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for session in found:
        row = session.as_json()
        base = {k: row[k] for k in ("site", "lsid", "start_time", "end_time", "external_key")}
        base["people"] = "; ".join(row["people"])
        base["customers"] = "; ".join(row["customers"])
        for item in row["items"] or [{}]:
            writer.writerow({**base, **{k: item.get(k) for k in _CSV_FIELDS[7:]}})


def _print_lines(found: list[FoundSession], limit: int) -> None:
    """Each session in three lines, never cut: when, where and which; who; its items."""
    if not found:
        click.echo("no session in the archive matches")
        return
    for session in found:
        s = session.session
        places: dict[str, list[str]] = {}
        for item in session.items:
            places.setdefault(item.destination, []).append(f"{item.data_type} {item.status}")
        ended = "in progress" if s.end_time is None else f"{s.end_time:%Y-%m-%d %H:%M:%S}Z"
        click.echo(f"{ended}  {_shown(s.site)}  {_shown(s.lsid)}")
        click.echo(
            f"    people: {_shown(', '.join(s.people)) or '-'}; "
            f"customers: {_shown(', '.join(s.customers)) or '-'}"
        )
        click.echo(
            "    " + ("; ".join(f"{d}: {', '.join(v)}" for d, v in places.items()) or "no items")
        )
    if len(found) >= limit:
        click.echo(f"(the first {limit}; narrow the search, or raise --limit)")


def _shown(text: str) -> str:
    """``text`` from the appliance's users, safe for a terminal: control and format
    characters (an escape sequence, a right-to-left override) become U+FFFD."""
    return "".join(
        "\ufffd" if unicodedata.category(char) in ("Cc", "Cf") else char for char in text
    )
