"""``btic verify``: the archive against the ledger.

For each destination the ledger's deliveries are streamed to the plugin's
``on_verify``, which reports each item that is missing or changed; when the
plugin can list what it holds (``on_list``), locations the ledger does not
know are reported as unexpected. The comparison of the two lists runs in a
scratch SQLite file, so memory stays flat for a million items whatever the
state database is.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from btic.config import Config
from btic.digests import check_digests, public_key_of
from btic.errors import ConfigError, DestinationError
from btic.plugins import PluginManager
from btic.state import DELIVERED, StateStore
from btic.state.entries import is_session_marker
from btic.state.values import now
from btic.stored import stored_item_of
from btic.types import StoredItem, VerifyFinding

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


@dataclass
class DestinationReport:
    """What ``btic verify`` found at one destination."""

    destination: str
    checked: int = 0
    findings: dict[str, int] = field(
        default_factory=lambda: {"missing": 0, "changed": 0, "unexpected": 0, "tampered": 0}
    )
    #: why the destination could not be verified (wholly or the unexpected part)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    #: the first findings (MOST_KEPT), as the integrity page lists them
    kept: list[VerifyFinding] = field(default_factory=list)
    #: what was checked: the items of one site, of sessions since a time
    site: str | None = None
    since: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """The report as the state database keeps it and the viewer answers it."""
        return {
            "destination": self.destination,
            "checked": self.checked,
            "findings": dict(self.findings),
            "notes": list(self.notes),
            "error": self.error,
            "site": self.site,
            "since": None if self.since is None else self.since.isoformat(),
            "examples": [
                {
                    "kind": f.kind,
                    "location": f.location,
                    "item_key": None if f.item_key is None else str(f.item_key),
                    "detail": f.detail,
                }
                for f in self.kept
            ],
        }

    @property
    def failed(self) -> bool:
        return self.error is not None or any(self.findings.values())


#: Findings a destination's report keeps (its counts are whole).
MOST_KEPT = 200


def verify(
    config: Config,
    plugins: PluginManager,
    state: StateStore,
    *,
    destinations: Iterable[str],
    site: str | None = None,
    since: datetime | None = None,
    on_finding: Callable[[str, VerifyFinding], None],
    on_item: Callable[[], None] = lambda: None,
) -> list[DestinationReport]:
    """Verify each destination; ``on_finding(destination, finding)`` hears every finding.
    Each destination's report is kept in the state database as its last."""
    public_key = public_key_of(config)
    reports = []
    for name in destinations:
        report = DestinationReport(name, site=site, since=since)
        reports.append(report)

        def heard(
            destination: str, finding: VerifyFinding, kept: list[VerifyFinding] = report.kept
        ) -> None:
            if len(kept) < MOST_KEPT:
                kept.append(finding)
            on_finding(destination, finding)

        _verify_one(config, plugins, state, report, public_key, heard, on_item)
        state.record_verify_report(name, now(), json.dumps(report.as_json()))
    return reports


def _verify_one(
    config: Config,
    plugins: PluginManager,
    state: StateStore,
    report: DestinationReport,
    public_key: Ed25519PublicKey | None,
    on_finding: Callable[[str, VerifyFinding], None],
    on_item: Callable[[], None],
) -> None:
    name, site, since = report.destination, report.site, report.since
    destination = config.destinations[name]
    started = now()
    # Ledger keys of the items found wrong: the others are recorded as verified.
    wrong: set[str] = set()
    try:
        config.configure_destination(plugins, name)
        items = _counted(_stored_items(config, state, name, site, since), report, on_item)
        reported: set[str] = set()
        try:
            for finding in plugins.on_verify(name, items=items):
                report.findings[finding.kind] += 1
                reported.add(finding.location)
                if finding.item_key is not None:
                    wrong.add(finding.item_key.ledger_key)
                on_finding(name, finding)
        except LookupError:
            report.error = (
                f"plugin {destination.plugin} cannot verify (it has no on_verify); nothing "
                "was checked"
            )
            return
        for finding in _unexpected(plugins, state, name, report):
            report.findings["unexpected"] += 1
            on_finding(name, finding)
        if public_key is not None and site is None and since is None:
            for finding in _against_digests(config, plugins, state, name, public_key, report):
                if finding.item_key is not None:
                    wrong.add(finding.item_key.ledger_key)
                if finding.location not in reported:
                    report.findings["tampered"] += 1
                    on_finding(name, finding)
    except (DestinationError, ConfigError) as exc:
        report.error = str(exc)
        return
    state.record_verified(name, started=started, site=site, since=since, except_keys=wrong)


def _stored_items(
    config: Config, state: StateStore, destination: str, site: str | None, since: datetime | None
) -> Iterator[StoredItem]:
    for entry in state.entries(destination=destination, site=site, status=DELIVERED):
        if entry.location is None or is_session_marker(entry.data_type, entry.item_key):
            continue
        if since is not None and entry.item_time is not None and entry.item_time < since:
            continue
        yield stored_item_of(config, entry)


def _against_digests(
    config: Config,
    plugins: PluginManager,
    state: StateStore,
    destination: str,
    public_key: Ed25519PublicKey,
    report: DestinationReport,
) -> Iterator[VerifyFinding]:
    """The destination against its own signed digests, not the ledger: a broken
    signature or link, and each item that differs from what its digest says."""
    checked = check_digests(config, plugins, state, destination, public_key)
    if checked.error is not None:
        report.notes.append(f"digests not checked: {checked.error}")
        return
    report.notes.append(f"{checked.digests} signed digest(s) checked")
    for problem in checked.chain or ():
        yield VerifyFinding("tampered", f"digest {problem.digest}", problem.detail)
    for finding in checked.items or ():
        yield VerifyFinding(
            "tampered",
            finding.location,
            f"{finding.kind} against its signed digest: {finding.detail}",
            finding.item_key,
        )


def _counted(
    items: Iterator[StoredItem], report: DestinationReport, on_item: Callable[[], None]
) -> Iterator[StoredItem]:
    for item in items:
        report.checked += 1
        on_item()
        yield item


def _unexpected(
    plugins: PluginManager, state: StateStore, destination: str, report: DestinationReport
) -> Iterator[VerifyFinding]:
    listed = plugins.on_list(destination)
    if listed is None:
        report.notes.append("its plugin cannot list what it holds: unexpected items not looked for")
        return
    with tempfile.TemporaryDirectory(prefix="btic-verify-") as scratch:
        db = sqlite3.connect(Path(scratch) / "compare.db")
        try:
            db.execute("CREATE TABLE ledger (location TEXT)")
            db.execute("CREATE TABLE listed (location TEXT)")
            db.executemany(
                "INSERT INTO ledger VALUES (?)",
                (
                    (entry.location,)
                    for entry in state.entries(destination=destination)
                    if entry.location is not None
                ),
            )
            db.executemany("INSERT INTO listed VALUES (?)", ((location,) for location in listed))
            db.execute("CREATE INDEX ledger_location ON ledger (location)")
            rows = db.execute(
                "SELECT location FROM listed EXCEPT SELECT location FROM ledger ORDER BY 1"
            )
            for (location,) in rows:
                yield VerifyFinding("unexpected", location, "the ledger has no delivery here")
        finally:
            db.close()
