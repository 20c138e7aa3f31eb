"""What the state database says about the service, read-only, for ``btic status``:
schedules' last runs, each (site, destination, data type)'s watermark and counts,
items given up and recent failures, runs in progress, leases held and Celery
tasks per site."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import desc, func, select

from btic.state.schema import FAILED, GIVEN_UP, deliveries, locks, runs, schedules, watermarks
from btic.state.store import StateStore
from btic.state.tasks import TaskCounts
from btic.state.values import as_utc
from btic.statuses import RunStatus

#: Items listed per (site, destination, data type) and kind (given up, failing).
SHOWN_ITEMS = 5


@dataclass(frozen=True)
class ScheduleRun:
    name: str
    last_slot: datetime
    finished_at: datetime
    status: str


@dataclass(frozen=True)
class ProblemItem:
    item_key: str
    error: str | None
    attempts: int
    updated_at: datetime


@dataclass
class Stream:
    """One (site, destination, data type): where it stands."""

    site: str
    destination: str
    data_type: str
    watermark: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    given_up: list[ProblemItem] = field(default_factory=list)
    failing: list[ProblemItem] = field(default_factory=list)


@dataclass(frozen=True)
class RunInProgress:
    run_id: str
    kind: str
    schedule: str | None
    started_at: datetime
    host: str | None
    pid: int | None


@dataclass(frozen=True)
class Lease:
    name: str
    owner: str
    expires_at: datetime


@dataclass
class Overview:
    schedules: dict[str, ScheduleRun]
    streams: list[Stream]
    running: list[RunInProgress]
    leases: list[Lease]
    #: Celery tasks queued, running and retried, per site (the celery executor).
    tasks: list[TaskCounts] = field(default_factory=list)

    @property
    def failing(self) -> bool:
        """Some item is failing, or was given up: the archive lacks it until someone
        acts or the next run gets it (``btic status`` exits 1)."""
        return any(stream.failing or stream.given_up for stream in self.streams)


def read_overview(store: StateStore) -> Overview:
    """Everything ``btic status`` shows, in a handful of queries."""
    with store.engine.connect() as connection:
        last_runs = {
            row.name: ScheduleRun(
                row.name, as_utc(row.last_slot), as_utc(row.finished_at), row.status
            )
            for row in connection.execute(select(schedules))
        }
        streams: dict[tuple[str, str, str], Stream] = {}

        def stream(site: str, destination: str, data_type: str) -> Stream:
            key = (site, destination, data_type)
            if key not in streams:
                streams[key] = Stream(site, destination, data_type)
            return streams[key]

        counted = select(
            deliveries.c.site,
            deliveries.c.destination,
            deliveries.c.data_type,
            deliveries.c.status,
            func.count(),
        ).group_by(
            deliveries.c.site, deliveries.c.destination, deliveries.c.data_type, deliveries.c.status
        )
        for site, destination, data_type, status, count in connection.execute(counted):
            stream(site, destination, data_type).counts[status] = count
        for row in connection.execute(select(watermarks)):
            stream(row.site, row.destination, row.data_type).watermark = as_utc(row.position)
        for status, attribute in ((GIVEN_UP, "given_up"), (FAILED, "failing")):
            recent = (
                select(deliveries)
                .where(deliveries.c.status == status)
                .order_by(desc(deliveries.c.updated_at))
            )
            for row in connection.execute(recent):
                items: list[ProblemItem] = getattr(
                    stream(row.site, row.destination, row.data_type), attribute
                )
                if len(items) < SHOWN_ITEMS:
                    items.append(
                        ProblemItem(row.item_key, row.error, row.attempts, as_utc(row.updated_at))
                    )
        running = [
            RunInProgress(row.id, row.kind, row.schedule, as_utc(row.started_at), row.host, row.pid)
            for row in connection.execute(
                select(runs).where(runs.c.status == RunStatus.RUNNING).order_by(runs.c.started_at)
            )
        ]
        held = [
            Lease(row.name, row.owner, as_utc(row.expires_at))
            for row in connection.execute(select(locks).order_by(locks.c.name))
        ]
    return Overview(
        last_runs, [streams[k] for k in sorted(streams)], running, held, store.task_counts()
    )


__all__ = ["SHOWN_ITEMS", "Overview", "read_overview"]
