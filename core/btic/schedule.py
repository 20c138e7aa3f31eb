"""When a schedule is due: fixed slots, so any caller gets exactly the configured periods.

A schedule's runs belong to **slots**: for a period under a day, or a period of
whole days without ``at``, the multiples of the period since a fixed epoch
(every 15 minutes: :00, :15, :30, :45 UTC); for a period of whole days with
``at``, that time of day in the schedule's time zone on every N-th day (the
local time read through the zone's rules, so a daylight-saving change moves
nothing). A schedule is due when its latest slot at or before now is later
than the slot of its last run. So a one-minute cron entry, a daemon that
ticks every minute, or a machine that was off for a week all get one run per
slot at most, and the runs missed while nothing ran coalesce into one.

Nothing here reads a clock or a database: the caller passes ``now`` and the
last slot, which makes the rules testable over simulated weeks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Slots are counted from here (a Monday, so weekly slots fall on Mondays).
EPOCH = datetime(1970, 1, 5, tzinfo=timezone.utc)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """A schedule's timing: ``every`` and, for whole days, an optional ``at``."""

    every: timedelta
    at: time | None = None
    zone: tzinfo = timezone.utc

    @property
    def daily(self) -> bool:
        return self.at is not None and self.every % DAY == timedelta(0)

    def latest_slot(self, now: datetime) -> datetime:
        """The last slot at or before ``now`` (UTC)."""
        if not self.daily:
            return EPOCH + ((now - EPOCH) // self.every) * self.every
        today = now.astimezone(self.zone).date()
        for back in range(self._days() * 2 + 2):
            slot = self._slot_on(today - timedelta(days=back))
            if slot is not None and slot <= now:
                return slot
        raise AssertionError("a daily slot exists within two periods")  # pragma: no cover

    def next_slot(self, after: datetime) -> datetime:
        """The first slot strictly after ``after`` (UTC)."""
        if not self.daily:
            return self.latest_slot(after) + self.every
        day = after.astimezone(self.zone).date()
        for ahead in range(self._days() * 2 + 2):
            slot = self._slot_on(day + timedelta(days=ahead))
            if slot is not None and slot > after:
                return slot
        raise AssertionError("a daily slot exists within two periods")  # pragma: no cover

    def is_due(self, last_slot: datetime | None, now: datetime) -> bool:
        """Whether a run is owed: a slot has come since the last run's."""
        return last_slot is None or self.latest_slot(now) > last_slot

    def _days(self) -> int:
        return self.every // DAY

    def _slot_on(self, day: date) -> datetime | None:
        """The slot on local date ``day``, if that day is one of the schedule's."""
        assert self.at is not None
        if (day - EPOCH.date()).days % self._days():
            return None
        # fold=0: an ambiguous local time (the hour repeated in autumn) is its first
        # occurrence; a missing one (the hour skipped in spring) lands just after the gap.
        return datetime.combine(day, self.at, tzinfo=self.zone).astimezone(timezone.utc)


@dataclass(frozen=True)
class Choice:
    """Which schedules run now and which wait.

    :ivar due: (name, the slot this run covers), to record once it has run.
    :ivar waiting: (name, when its next slot comes).
    """

    due: list[tuple[str, datetime]]
    waiting: list[tuple[str, datetime]]


def waiting_lines(choice: Choice, periods: Mapping[str, Period]) -> list[str]:
    """A line for each schedule that waits: when its next slot comes, in its zone."""
    return [
        f"schedule {name}: not due; next at {when.astimezone(periods[name].zone):%Y-%m-%d %H:%M %Z}"
        for name, when in choice.waiting
    ]


def choose(
    periods: Mapping[str, Period],
    last_slots: Mapping[str, datetime | None],
    now: datetime,
    *,
    anyway: bool = False,
) -> Choice:
    """The schedules due at ``now``; with ``anyway`` (``--schedule``, ``--all``) all of
    them, each covering its latest slot so the regular run of that slot is not made
    again."""
    due, waiting = [], []
    for name, period in periods.items():
        if anyway or period.is_due(last_slots.get(name), now):
            due.append((name, period.latest_slot(now)))
        else:
            waiting.append((name, period.next_slot(now)))
    return Choice(due, waiting)


def local_zone() -> tzinfo:
    """This machine's time zone with its daylight-saving rules (``TZ``, else
    ``/etc/localtime``); a fixed offset only where neither says more."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    localtime = Path("/etc/localtime")
    try:
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        with localtime.open("rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ZoneInfoNotFoundError, ValueError):
        return datetime.now().astimezone().tzinfo or timezone.utc


def zone_named(name: str | None) -> tzinfo:
    """The zone of a schedule's ``time_zone`` (an IANA name), or this machine's."""
    return ZoneInfo(name) if name else local_zone()


__all__ = ["EPOCH", "Choice", "Period", "choose", "local_zone", "zone_named"]
