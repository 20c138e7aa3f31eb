"""Retention: delete from each destination what is past its data type's period, never
what a legal hold keeps, and record each removal.

A destination's ``retention = { session = "7y", recording = "400d" }`` is applied
after each run that wrote to it (and by ``btic retention``): an item whose time
(the session's end, a backup's time) is older than its period is deleted through
the plugin's ``on_remove`` and recorded in the ledger as ``removed``, with the rule,
so it is never fetched again and ``btic verify`` does not call it missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from structlog.typing import FilteringBoundLogger

from btic.config import Config
from btic.config.sections import format_duration
from btic.errors import DestinationError
from btic.plugins import PluginManager
from btic.state import StateStore
from btic.state.entries import is_session_marker
from btic.state.values import now
from btic.stored import stored_item
from btic.transfer.summary import Summary
from btic.types import DataType, StoredItem

#: Failures in a row after which a destination's removals stop for the run.
STOP_AFTER = 3


@dataclass(frozen=True)
class Removal:
    """An item a rule removed (or, in a dry run, would remove)."""

    destination: str
    data_type: DataType
    site: str
    item_key: str
    location: str | None
    item_time: datetime
    rule: str
    sha256: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "data_type": self.data_type.value,
            "site": self.site,
            "item_key": self.item_key,
            "location": self.location,
            "item_time": self.item_time.isoformat().replace("+00:00", "Z"),
            "rule": self.rule,
        }


def rule_text(data_type: DataType, period: timedelta) -> str:
    return f"retention {data_type.value} = {format_duration(period)}"


class Retention:
    """Applies the retention rules of a configuration.

    :param clock: the time retention counts from (tests move it).
    """

    def __init__(
        self,
        config: Config,
        plugins: PluginManager,
        state: StateStore,
        *,
        run_id: str,
        log: FilteringBoundLogger,
        clock: Callable[[], datetime] = now,
    ):
        self.config = config
        self.plugins = plugins
        self.state = state
        self.run_id = run_id
        self.log = log
        self.clock = clock

    def destinations_with_rules(self, names: Iterable[str]) -> list[str]:
        return [n for n in dict.fromkeys(names) if self.config.destinations[n].retention]

    def apply(
        self, destinations: Iterable[str], summary: Summary, *, dry_run: bool = False
    ) -> list[Removal]:
        """Remove what the rules of ``destinations`` say is past its time (in a dry
        run only list it); count each in ``summary`` as ``removed``, and say each
        failure there. Every destination must be configured (``on_configure``)."""
        held = {(hold.site, hold.lsid) for hold in self.state.holds()}
        moment = self.clock()
        done: list[Removal] = []
        for destination in self.destinations_with_rules(destinations):
            for data_type, period in self.config.destinations[destination].retention.items():
                due = [
                    (removal, item)
                    for removal, item in self._due(destination, data_type, period, moment)
                    if data_type is DataType.BACKUP
                    or (removal.site, removal.item_key.partition("#")[0]) not in held
                ]
                if dry_run:
                    done.extend(removal for removal, _ in due)
                    continue
                removed, stopped = self._remove(destination, due, summary)
                done.extend(removed)
                if stopped:
                    summary.problem(
                        f"{destination}: removals failed {STOP_AFTER} times in a row; the "
                        "rest wait for the next run"
                    )
                    break
        return done

    def _due(
        self, destination: str, data_type: DataType, period: timedelta, moment: datetime
    ) -> list[tuple[Removal, StoredItem]]:
        """What a rule says must go, and what the plugin is told of each."""
        rule = rule_text(data_type, period)
        found = []
        for due in self.state.due_for_removal(destination, data_type.value, moment - period):
            if is_session_marker(data_type.value, due.item_key):
                continue  # a row of the ledger, not an item
            item = stored_item(
                self.config,
                site=due.site,
                data_type=data_type,
                ledger_key=due.item_key,
                location=due.location,
                size=due.size,
                sha256=due.sha256,
                item_time=due.item_time,
            )
            removal = Removal(
                destination, data_type, due.site, due.item_key, due.location, due.item_time,
                rule, due.sha256,
            )  # fmt: skip
            found.append((removal, item))
        return found

    def _remove(
        self, destination: str, due: list[tuple[Removal, StoredItem]], summary: Summary
    ) -> tuple[list[Removal], bool]:
        """Delete each item and record it; stop after :data:`STOP_AFTER` failures in a
        row (True then)."""
        removed: list[Removal] = []
        failures = 0
        for removal, item in due:
            try:
                self.plugins.on_remove(destination, item=item)
            except DestinationError as exc:
                failures += 1
                summary.problem(
                    f"{destination}: {removal.data_type.value} {removal.item_key} is past "
                    f"{removal.rule} but could not be removed: {exc}; the next run tries again"
                )
                if failures >= STOP_AFTER:
                    return removed, True
                continue
            failures = 0
            self.state.record_removal(
                site=removal.site,
                destination=destination,
                data_type=removal.data_type.value,
                item_key=removal.item_key,
                location=removal.location,
                sha256=removal.sha256,
                rule=removal.rule,
                run_id=self.run_id,
            )
            summary.removed(destination, removal.data_type.value, 1)
            self.log.info(
                "removed", destination=destination, data_type=removal.data_type.value,
                key=removal.item_key, location=removal.location, rule=removal.rule,
            )  # fmt: skip
            removed.append(removal)
        return removed, False
