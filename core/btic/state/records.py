"""The bookkeeping of runs in the state database: schedules' last runs, the runs
themselves, and the leases that keep two runs off the same items."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from btic.state.schema import locks, runs, schedules
from btic.state.values import as_utc, now
from btic.statuses import RunStatus


@dataclass(frozen=True)
class ScheduleTimes:
    """When a schedule's last run ended, and its last run without errors (None: never)."""

    last_run: datetime | None
    last_success: datetime | None


class RunRecords:
    """The part of :class:`~btic.state.StateStore` that records runs, schedules and
    leases (the ledger and the watermarks are the store's own)."""

    engine: Engine
    _write_lock: threading.Lock

    # -- schedules --------------------------------------------------------------------

    def last_slots(self, names: Iterable[str]) -> dict[str, datetime | None]:
        """The slot each schedule's last run covered (None: it never ran)."""
        wanted = list(names)
        found: dict[str, datetime | None] = dict.fromkeys(wanted)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(schedules.c.name, schedules.c.last_slot).where(schedules.c.name.in_(wanted))
            )
            for name, slot in rows:
                found[name] = as_utc(slot)
        return found

    def schedule_times(self, names: Iterable[str]) -> dict[str, ScheduleTimes]:
        """What the state database remembers of each schedule's runs, for a process
        that starts (the metrics of a daemon that restarted)."""
        wanted = list(names)
        last: dict[str, tuple[datetime, str]] = {}
        succeeded: dict[str, datetime] = {}
        with self.engine.connect() as connection:
            for name, finished, status in connection.execute(
                select(schedules.c.name, schedules.c.finished_at, schedules.c.status).where(
                    schedules.c.name.in_(wanted)
                )
            ):
                last[name] = (as_utc(finished), status)
            for name, finished in connection.execute(
                select(runs.c.schedule, func.max(runs.c.finished_at))
                .where(runs.c.schedule.in_(wanted) & (runs.c.status == RunStatus.OK))
                .group_by(runs.c.schedule)
            ):
                if finished is not None:
                    succeeded[name] = as_utc(finished)
        found = {}
        for name in wanted:
            finished, status = last.get(name, (None, None))
            success = succeeded.get(name)
            if finished is not None and status == RunStatus.OK:
                success = finished if success is None else max(success, finished)
            found[name] = ScheduleTimes(finished, success)
        return found

    def schedule_status(self, name: str) -> str | None:
        """How schedule ``name``'s last recorded run went (None: it never ran)."""
        with self.engine.connect() as connection:
            status = connection.execute(
                select(schedules.c.status).where(schedules.c.name == name)
            ).scalar()
        return None if status is None else str(status)

    def record_schedule_run(
        self, name: str, slot: datetime, status: RunStatus, started_at: datetime
    ) -> None:
        """Remember that schedule ``name`` ran for ``slot`` (never moving it back)."""
        values = {
            "last_slot": slot,
            "started_at": started_at,
            "finished_at": now(),
            "status": status,
        }
        with self._write_lock, self.engine.begin() as connection:
            current = connection.execute(
                select(schedules.c.last_slot).where(schedules.c.name == name)
            ).scalar()
            if current is None:
                connection.execute(schedules.insert().values(name=name, **values))
            elif as_utc(current) <= slot:
                row = schedules.c.name == name
                connection.execute(update(schedules).where(row).values(**values))

    # -- runs -------------------------------------------------------------------------

    def start_run(self, kind: str, schedule: str | None = None) -> str:
        run_id = str(uuid.uuid4())
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                runs.insert().values(
                    id=run_id,
                    kind=kind,
                    schedule=schedule,
                    started_at=now(),
                    status=RunStatus.RUNNING,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                )
            )
        return run_id

    def interrupt_dead_runs(self, host: str, alive: Callable[[int], bool]) -> int:
        """Mark runs of ``host`` still ``running`` whose process is gone as
        ``interrupted``; return how many."""
        with self._write_lock, self.engine.begin() as connection:
            rows = connection.execute(
                select(runs.c.id, runs.c.pid).where(
                    (runs.c.status == RunStatus.RUNNING) & (runs.c.host == host)
                )
            ).all()
            dead = [row.id for row in rows if row.pid is not None and not alive(row.pid)]
            if dead:
                connection.execute(
                    update(runs)
                    .where(runs.c.id.in_(dead) & (runs.c.status == RunStatus.RUNNING))
                    .values(status=RunStatus.INTERRUPTED, finished_at=now())
                )
        return len(dead)

    def finish_run(self, run_id: str, status: RunStatus, summary: str | None = None) -> None:
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(status=status, finished_at=now(), summary=summary)
            )

    # -- leases ---------------------------------------------------------------------

    def take_lease(
        self,
        name: str,
        owner: str,
        ttl: timedelta,
        abandoned: Callable[[str, datetime], bool],
    ) -> str | None:
        """Take the lease ``name`` for ``owner``: a compare-and-set, so one of
        several contenders wins.

        :param abandoned: ``(holder, expires_at)`` -> whether another holder's
            lease may be taken over.
        :return: None when taken; else the holder.
        """
        moment = now()
        values = {"owner": owner, "acquired_at": moment, "expires_at": moment + ttl}
        with self._write_lock, self.engine.begin() as connection:
            row = connection.execute(
                select(locks.c.owner, locks.c.expires_at).where(locks.c.name == name)
            ).first()
            if row is None:
                try:
                    with connection.begin_nested():
                        connection.execute(locks.insert().values(name=name, **values))
                    return None
                except IntegrityError:
                    holder = connection.execute(
                        select(locks.c.owner).where(locks.c.name == name)
                    ).scalar()
                    return str(holder)
            if row.owner != owner and not abandoned(row.owner, as_utc(row.expires_at)):
                return str(row.owner)
            taken = connection.execute(
                update(locks)
                .where(
                    (locks.c.name == name)
                    & (locks.c.owner == row.owner)
                    & (locks.c.expires_at == row.expires_at)
                )
                .values(**values)
            )
            return None if taken.rowcount == 1 else str(row.owner)

    def renew_leases(self, names: Iterable[str], owner: str, ttl: timedelta) -> None:
        names = list(names)
        if not names:
            return
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                update(locks)
                .where(locks.c.name.in_(names) & (locks.c.owner == owner))
                .values(expires_at=now() + ttl)
            )

    def release_leases(self, names: Iterable[str], owner: str) -> None:
        names = list(names)
        if not names:
            return
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                delete(locks).where(locks.c.name.in_(names) & (locks.c.owner == owner))
            )
