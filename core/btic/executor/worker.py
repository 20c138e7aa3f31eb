"""The worker's side of the celery executor: run one transfer task.

A ``btic worker`` process makes one :class:`Worker` for its life and runs each
task it receives in a thread of Celery's ``threads`` pool, through the same
:class:`~btic.runs.CommandRun` as ``btic sync``. What the process keeps across
tasks is what a daemon keeps across runs: the configuration, the plugins and
one appliance client, so one token, per site.

Two limits hold across the whole cluster, kept in the state database:

* at most ``[executor] tasks_per_site`` tasks of one site run at once (leases
  ``site/NAME/0..N-1``): a task that finds them all taken goes back to the
  broker and is tried again after ``busy_retry``, so the appliance's API is
  not flooded whatever the number of workers;
* two tasks that would work on the same (site, destination, data type) never
  do so at once: the engine's own leases, as for two ``btic sync`` processes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from structlog.typing import FilteringBoundLogger

from btic.appliance.pool import ClientPool
from btic.config import Config
from btic.errors import BticError, UsageError, own_failure
from btic.executor.app import TASK_NAME
from btic.executor.spec import TransferTask
from btic.leases import LEASE_TTL, Leases
from btic.plugins import PluginManager
from btic.runs import CommandRun
from btic.scheduler import ScheduleObserver, ScheduleOutcome, tell, utc_now
from btic.state import LOCK_NAME_LENGTH, TASK_QUEUED, StateStore, fit_column, heartbeat_lease
from btic.statuses import RunStatus
from btic.transfer import SilentReporter, Summary
from btic.transfer.spool import RunSpool, spool_parent

if TYPE_CHECKING:
    from celery import Celery


class SiteBusy(Exception):
    """Every task slot of the site is taken; the task waits in the broker."""


class WorkerStopping(Exception):
    """The worker was asked to stop while the task ran; the task goes back."""


def site_slot_lease(site: str, index: int) -> str:
    """One of the ``tasks_per_site`` leases that cap a site's running tasks."""
    return fit_column(f"site/{site}/{index}", LOCK_NAME_LENGTH)


class Worker:
    """What one ``btic worker`` process keeps for every task it runs.

    :param observers: told how each task went (e-mail notifications).
    :param stop: set when the worker shuts down: running tasks end after the
        items in hand and go back to the broker.
    :raises ConfigError: when the configuration cannot serve a distributed executor.
    """

    def __init__(
        self,
        config: Config,
        plugins: PluginManager,
        *,
        log: FilteringBoundLogger,
        observers: Sequence[ScheduleObserver] = (),
        stop: threading.Event | None = None,
    ):
        config.require_distributed()
        self.config = config
        self.plugins = plugins
        self.log = log
        self.observers = list(observers)
        self.stop = stop or threading.Event()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.state = StateStore(config.state_url)
        self._spool = RunSpool(spool_parent(config.state_url))
        # One client, and so one token, per site for every task of this process.
        self.clients = ClientPool(config, spool_dir=self._spool.path)
        self.leases = Leases(self.state, f"worker-{uuid.uuid4()}")
        # The heartbeat: held and renewed for the process's life, gone within a
        # lease's time once it dies, so `btic status` calls its tasks lost.
        self.leases.acquire(heartbeat_lease(self.name))

    def run(self, task: TransferTask, *, retry_held: bool = True) -> RunStatus:
        """Run ``task``: ``ok`` or ``failed`` as a sync run ends.

        :param retry_held: when another run held part of the transfer, raise
            :class:`SiteBusy` so the task comes back for that part later.
        :raises SiteBusy: when the site has its fill of running tasks, or (with
            ``retry_held``) another run held part of the transfer.
        :raises WorkerStopping: when the worker stopped it midway.
        :raises BticError: btic's own failure (the state database, a site or
            destination this worker's configuration lacks); the task is recorded
            as ``error``.
        """
        try:
            self.config.require(sites=[task.site], destinations=task.destinations)
        except UsageError as exc:
            self.state.task_finished(
                task.task_id, RunStatus.ERROR, f"this worker's configuration lacks it: {exc}"
            )
            raise
        slot = self._take_site_slot(task.site)
        if slot is None:
            raise SiteBusy(
                f"site {task.site} has {self.config.executor.tasks_per_site} task(s) running "
                "([executor] tasks_per_site)"
            )
        started = utc_now()
        run: CommandRun | None = None
        try:
            run = CommandRun(
                self.config,
                self.plugins,
                "task",
                reporter=SilentReporter(),
                log=self.log.bind(task_id=task.task_id),
                schedule=task.schedule,
                clients=self.clients,
                stop=self.stop,
            )
            self.state.task_started(task.task_id, worker=self.name, run_id=run.run_id)
            with run:
                summary = run.transfer([task.request()])
                run.note_given_up(summary, [task.site])
            from btic.progress import summary_text

            stopping = self.stop.is_set()
            status = run.record(summary, summary_text(summary), interrupted=stopping)
        except Exception as exc:
            error = own_failure(exc)
            if run is not None:
                run.record_failure(error)
            with contextlib.suppress(Exception):  # the state database may be what failed
                self.state.task_finished(task.task_id, RunStatus.ERROR, error)
            raise
        finally:
            self.leases.release([slot])
        if stopping:
            self.state.task_finished(task.task_id, TASK_QUEUED, "the worker stopped; sent back")
            raise WorkerStopping(task.task_id)
        if summary.held_elsewhere and retry_held:
            # Part of the transfer is another run's now (a copy of this task, or the
            # redelivered task of a worker that died elsewhere, whose leases expire).
            pairs = ", ".join(f"{kind} for {dest}" for dest, kind in summary.held_elsewhere)
            raise SiteBusy(f"site {task.site}: {pairs} held by another run")
        self.state.task_finished(task.task_id, status, "; ".join(summary.problems[:3]) or None)
        self._tell(task, status, run.run_id, summary, started)
        return status

    def close(self) -> None:
        self.leases.close()
        self.clients.close()
        self._spool.close()
        self.state.close()

    def _take_site_slot(self, site: str) -> str | None:
        for index in range(self.config.executor.tasks_per_site):
            name = site_slot_lease(site, index)
            # acquire() answers this worker's own name for a slot another of its
            # threads holds: taken, like any other holder.
            if self.leases.acquire(name) is None:
                return name
        return None

    def _tell(
        self,
        task: TransferTask,
        status: RunStatus,
        run_id: str,
        summary: Summary,
        started: datetime,
    ) -> None:
        outcome = ScheduleOutcome(
            name=task.schedule,
            slot=task.slot,
            status=status,
            run_id=run_id,
            summary=summary,
            started_at=started,
            finished_at=utc_now(),
            sites=(task.site,),
            destinations=task.destinations,
        )
        tell(self.observers, outcome, self.log)


def register(app: Celery, worker: Worker) -> None:
    """Define btic's task on ``app``, run by ``worker``."""
    from celery.exceptions import Reject

    retry_after = worker.config.executor.busy_retry.total_seconds()
    # How often a task comes back for pairs another run holds: enough to outlast a
    # dead worker's leases (LEASE_TTL), not forever if something holds them for good.
    held_retries = max(3, int(2 * LEASE_TTL.total_seconds() / max(1.0, retry_after)))

    def transfer(self: Any, task: dict[str, Any]) -> str:
        spec = TransferTask.model_validate(task)
        try:
            return worker.run(spec, retry_held=self.request.retries < held_retries)
        except SiteBusy as busy:
            worker.state.task_retried(spec.task_id, str(busy))
            raise self.retry(countdown=retry_after, max_retries=None) from None
        except WorkerStopping:
            # Back to the broker for another worker; what was delivered stays delivered.
            raise Reject("the worker is stopping", requeue=True) from None
        except BticError as exc:
            worker.log.error(f"task {spec.task_id} ({spec.label}) failed: {exc}")
            return RunStatus.ERROR

    app.task(
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,
        ignore_result=True,
    )(transfer)
