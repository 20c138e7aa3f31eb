"""``btic find``: sessions in the archive, from the state database alone."""

from __future__ import annotations

import csv
import dataclasses
import functools
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from btic.cli.base import Runtime, config_option, echo_json, promise_json
from btic.types import DataType

if TYPE_CHECKING:
    from btic.find import FoundSession
    from btic.state import StateStore


def moment(value: str | None, option: str) -> datetime | None:
    from btic.cli.transfers import parse_moment

    if value is None:
        return None
    moment = parse_moment(value, option)
    if isinstance(moment, timedelta):
        return datetime.now(timezone.utc) - moment
    return moment


@dataclass(frozen=True)
class Search:
    """The search options of ``btic find`` (and ``export``, ``hold add``), as typed."""

    site: str | None
    lsid: str | None
    external_key: str | None
    people: tuple[str, ...]
    customers: tuple[str, ...]
    hosts: tuple[str, ...]
    since: str | None
    until: str | None
    data_types: tuple[str, ...]
    destinations: tuple[str, ...]
    limit: int

    def find(self, state: StateStore) -> list[FoundSession]:
        """The sessions this search matches, with their items."""
        from btic.find import find
        from btic.state.session_index import SessionQuery, TermFilter
        from btic.summaries import TermKind

        terms = tuple(
            TermFilter.parse(kind, text)
            for kind, texts in (
                (TermKind.PERSON, self.people),
                (TermKind.CUSTOMER, self.customers),
                (TermKind.HOST, self.hosts),
            )
            for text in texts
        )
        query = SessionQuery(
            site=self.site,
            lsid=self.lsid,
            external_key=self.external_key,
            since=moment(self.since, "--since"),
            until=moment(self.until, "--until"),
            terms=terms,
            limit=self.limit,
        )
        return find(
            state,
            query,
            data_types=[DataType(d) for d in self.data_types],
            destinations=self.destinations,
        )


def search_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of a search; the command receives them as ``search: Search``."""
    options = [
        click.option("--site", help="Sessions of this site."),
        click.option("--lsid", help="The session with this lsid."),
        click.option("--external-key", help="Sessions with this external key."),
        click.option(
            "--person",
            "people",
            multiple=True,
            help="A representative or user: display name, username or gsnumber (a trailing * "
            "matches the start; repeatable, all must match).",
        ),
        click.option(
            "--customer",
            "customers",
            multiple=True,
            help="A customer or endpoint: name, username, company or gsnumber (a trailing * "
            "matches the start; repeatable).",
        ),
        click.option(
            "--host",
            "hosts",
            multiple=True,
            help="A machine's host name: the endpoint's or a representative's (a trailing * "
            "matches the start; repeatable).",
        ),
        click.option(
            "--since", help="Sessions that ended at or after: ISO time, or a period back (7d)."
        ),
        click.option("--until", help="Sessions that started before: ISO time, or a period back."),
        click.option(
            "--type",
            "data_types",
            multiple=True,
            type=click.Choice(sorted(dt.value for dt in DataType if dt is not DataType.BACKUP)),
            help="Only sessions with an item of this data type, and only those items (repeatable).",
        ),
        click.option(
            "--dest", "destinations", multiple=True, help="Only items at this destination."
        ),
        click.option("--limit", default=1000, show_default=True, type=click.IntRange(1)),
    ]

    @functools.wraps(command)
    def with_search(**kwargs: Any) -> Any:
        fields = [f.name for f in dataclasses.fields(Search)]
        search = Search(**{name: kwargs.pop(name) for name in fields})
        return command(search=search, **kwargs)

    for option in reversed(options):
        with_search = option(with_search)
    return with_search


@click.command("find")
@config_option
@search_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, one row per item.")
@click.pass_obj
def find_command(
    runtime: Runtime, config_path: Path | None, search: Search, as_json: bool, as_csv: bool
) -> None:
    """Sessions in the archive: who, when, which machines, and where each item is.

    Answers from the state database (the ledger and the summaries recorded when
    each session was delivered), whatever the destinations are; the latest first.
    """
    from btic.state import opened_state

    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    promise_json(as_json)
    config = runtime.load_config(config_path, secrets=False)
    limit = search.limit
    with opened_state(config.state_url) as state:
        found = search.find(state)
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
    "encrypted", "plain_sha256", "recorded_at", "verified_at",
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
            sealed = " (encrypted)" if item.encrypted else ""
            places.setdefault(item.destination, []).append(
                f"{item.data_type} {item.status}{sealed}"
            )
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


@click.command("export")
@config_option
@search_options
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="A new directory, or a new .zip file.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def export_command(
    runtime: Runtime, config_path: Path | None, search: Search, out: Path, as_json: bool
) -> None:
    """An auditor's package of what a search finds: each item's bytes, a manifest
    (CSV and JSON: sha256 as exported and as delivered, where from, when), the
    destinations' signed digests and the public key that checks them."""
    from btic.digests import public_key_of
    from btic.errors import WorkFailed
    from btic.export import Package, export, summary_of
    from btic.state import opened_state

    promise_json(as_json)
    if out.exists():
        raise click.BadParameter(f"{out} exists; an export is always a new one", param_hint="--out")
    config = runtime.load_config(config_path, secrets=False)
    with opened_state(config.state_url) as state:
        found = search.find(state)
    if not found:
        raise WorkFailed("no session matches; nothing exported")
    for name in sorted({item.destination for session in found for item in session.items}):
        if name in config.destinations:
            config.configure_destination(runtime.plugins, name)
    key = public_key_of(config)
    pem = None
    if key is not None:
        from cryptography.hazmat.primitives import serialization

        pem = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    package = Package(out)
    try:
        manifest = export(config, runtime.plugins, found, package, public_key=pem)
    finally:
        package.close()
    totals = summary_of(manifest)
    notes = [f"{e.destination} {e.item_key}: {e.note}" for e in manifest if e.note]
    if as_json:
        echo_json({"ok": True, "out": str(out), "sessions": len(found), **totals, "notes": notes})
    else:
        click.echo(
            f"{out}: {len(found)} session(s), {totals['copied']} of {totals['items']} item(s) "
            f"copied ({totals['bytes']} bytes)"
        )
        for note in notes:
            click.echo(f"note: {note}", err=True)
