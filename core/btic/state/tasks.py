"""The bookkeeping of Celery tasks in the state database (``btic_tasks``).

The broker knows what is queued but not per site, and forgets on a restart;
these rows are what ``btic status`` and the metrics read, written by the
scheduler when it enqueues and by the worker as a task starts and ends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine

from btic.state.schema import (
    LOCK_NAME_LENGTH,
    TASK_QUEUED,
    TASK_RETRIED,
    TASK_RUNNING,
    locks,
    tasks,
)
from btic.state.values import as_utc, fit_column, now
from btic.statuses import RunStatus

#: Finished tasks' rows are kept this long (``btic status`` shows recent ones).
TASK_HISTORY = timedelta(days=7)


def heartbeat_lease(worker: str) -> str:
    """The lease a ``btic worker`` process (``host:pid``) holds for its whole life: its
    heartbeat, by which a running task is told from one whose worker died."""
    return fit_column(f"worker/{worker}", LOCK_NAME_LENGTH)


@dataclass(frozen=True)
class TaskCounts:
    """How many tasks of one site are in each state right now."""

    site: str
    queued: int = 0
    running: int = 0
    retried: int = 0
    #: marked running, but the worker that took them stopped beating (killed, its
    #: machine gone): the broker gives them to another worker in time
    lost: int = 0


@dataclass(frozen=True)
class TaskLatency:
    """How long recent tasks waited in the queue and ran, and the oldest waiting.

    :ivar wait_mean: mean seconds from enqueued to started (None: none started).
    :ivar run_mean: mean seconds from started to finished of those finished.
    :ivar oldest_queued: seconds the longest-waiting queued task has waited.
    """

    wait_mean: float | None = None
    wait_max: float | None = None
    run_mean: float | None = None
    run_max: float | None = None
    oldest_queued: float | None = None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class TaskRecords:
    """The part of :class:`~btic.state.StateStore` that records Celery tasks."""

    engine: Engine
    _write_lock: threading.Lock

    def task_enqueued(
        self, task_id: str, *, schedule: str, slot: datetime, site: str, transfer: str
    ) -> None:
        """Record a task handed to the broker; forget finished ones past
        :data:`TASK_HISTORY`."""
        moment = now()
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                tasks.insert().values(
                    id=task_id,
                    schedule=schedule,
                    slot=slot,
                    site=site,
                    transfer=fit_column(transfer, 255),
                    status=TASK_QUEUED,
                    attempts=0,
                    enqueued_at=moment,
                )
            )
            connection.execute(
                delete(tasks).where(
                    (tasks.c.finished_at.is_not(None))
                    & (tasks.c.finished_at < moment - TASK_HISTORY)
                )
            )

    def task_started(self, task_id: str, *, worker: str, run_id: str | None = None) -> None:
        """A worker took the task (again, if it was redelivered or retried)."""
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                update(tasks)
                .where(tasks.c.id == task_id)
                .values(
                    status=TASK_RUNNING,
                    worker=worker,
                    run_id=run_id,
                    started_at=now(),
                    finished_at=None,
                    attempts=tasks.c.attempts + 1,
                )
            )

    def task_retried(self, task_id: str, detail: str) -> None:
        """The task went back to the broker to wait (its site had its fill)."""
        self._set_task(task_id, TASK_RETRIED, detail, finished=False)

    def task_finished(self, task_id: str, status: RunStatus, detail: str | None = None) -> None:
        self._set_task(task_id, status, detail, finished=True)

    def _set_task(
        self, task_id: str, status: RunStatus, detail: str | None, *, finished: bool
    ) -> None:
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                update(tasks)
                .where(tasks.c.id == task_id)
                .values(status=status, detail=detail, finished_at=now() if finished else None)
            )

    def task_counts(self) -> list[TaskCounts]:
        """Queued, running, retried and lost tasks per site (sites without any left out).

        A running task is lost when its worker's :func:`heartbeat_lease` is gone or
        expired.
        """
        moment = now()
        counts: dict[str, dict[str, int]] = {}
        with self.engine.connect() as connection:
            beating = {
                str(name)
                for (name,) in connection.execute(
                    select(locks.c.name).where(
                        locks.c.name.like("worker/%") & (locks.c.expires_at > moment)
                    )
                )
            }
            for site, status, worker in connection.execute(
                select(tasks.c.site, tasks.c.status, tasks.c.worker).where(
                    tasks.c.status.in_((TASK_QUEUED, TASK_RUNNING, TASK_RETRIED))
                )
            ):
                state = status
                if status == TASK_RUNNING and heartbeat_lease(worker) not in beating:
                    state = "lost"
                by_state = counts.setdefault(site, {})
                by_state[state] = by_state.get(state, 0) + 1
        return [TaskCounts(site, **by_state) for site, by_state in sorted(counts.items())]

    def task_latency(self, window: timedelta = timedelta(minutes=15)) -> TaskLatency:
        """Waits and run times of the tasks started in the last ``window``."""
        moment = now()
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(tasks.c.enqueued_at, tasks.c.started_at, tasks.c.finished_at).where(
                    tasks.c.started_at >= moment - window
                )
            ).all()
            oldest = connection.execute(
                select(func.min(tasks.c.enqueued_at)).where(tasks.c.status == TASK_QUEUED)
            ).scalar()
        waits = [(as_utc(r.started_at) - as_utc(r.enqueued_at)).total_seconds() for r in rows]
        runs = [
            (as_utc(r.finished_at) - as_utc(r.started_at)).total_seconds()
            for r in rows
            if r.finished_at is not None
        ]
        return TaskLatency(
            wait_mean=_mean(waits),
            wait_max=max(waits, default=None),
            run_mean=_mean(runs),
            run_max=max(runs, default=None),
            oldest_queued=(moment - as_utc(oldest)).total_seconds() if oldest is not None else None,
        )
