"""Running schedules: which are due, claiming one, running its transfers, remembering it.

A scheduler keeps one appliance client (one OAuth token) per site for every
run it makes, for as long as it lives: one ``btic sync``, or a daemon's life.

``btic sync`` asks a :class:`Scheduler` once; the daemon (:mod:`btic.daemon`)
asks it every minute. For each due schedule the scheduler takes the
schedule's lease in the state database (so two processes never run it at
once, and a crashed holder's lease is taken over when it expires), checks
again under the lease that no one ran that slot meanwhile, runs the
schedule's transfers at the same time as one recorded run, and records the
slot:

- ``ok`` and ``failed`` (an appliance or a destination failed, and that was
  reported) both count as the schedule's run, as the guide says; the next
  run waits for the next slot.
- ``interrupted`` (SIGTERM, SIGINT) and btic's own failures (an exception)
  record nothing, so the slot runs again.

Observers (e-mail notifications, metrics) hear of every outcome; one that
fails is logged and never stops a run.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from structlog.typing import FilteringBoundLogger

from btic import schedule
from btic.appliance.connection import CallObserver
from btic.appliance.pool import ClientPool
from btic.config import Config
from btic.errors import own_failure
from btic.leases import Leases, schedule_lease
from btic.plugins import PluginManager
from btic.runs import CommandRun
from btic.state import StateStore
from btic.state.records import ScheduleTimes
from btic.statuses import RunStatus
from btic.transfer import Reporter, SilentReporter, Summary, TransferRequest
from btic.transfer.spool import RunSpool, spool_parent

if TYPE_CHECKING:
    from btic.executor.dispatch import Dispatcher


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class ScheduleOutcome:
    """How one run of a schedule went.

    :ivar status: ``ok``, ``failed`` (an appliance or destination failed; the
        run counts), ``interrupted`` or ``error`` (btic itself failed); after
        the last two the slot runs again.
    :ivar previous_status: how its run before went (None: never ran).
    :ivar sites: the sites its transfers read; :ivar destinations: where they write.
    """

    name: str
    slot: datetime
    status: RunStatus
    run_id: str
    summary: Summary
    started_at: datetime
    finished_at: datetime
    previous_status: str | None = None
    sites: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()

    def account(self) -> str:
        """One line on how the run went, for the run's notes."""
        if self.status == RunStatus.OK:
            return f"schedule {self.name}: ran"
        if self.status == RunStatus.FAILED and not self.summary.tallies:
            # Nothing was even listed: every site (or the state database) failed.
            return (
                f"schedule {self.name}: did not run: no site of it could be read (the errors "
                "say why); it runs again at its next slot"
            )
        if self.status == RunStatus.FAILED:
            return f"schedule {self.name}: ran, with failures (the errors say which)"
        if self.status == RunStatus.INTERRUPTED:
            return f"schedule {self.name}: interrupted; its next run transfers the rest"
        return f"schedule {self.name}: did not run: btic failed (the errors say why)"


class ScheduleObserver(Protocol):
    """Hears how every schedule run went (notifications, metrics)."""

    def schedule_ran(self, outcome: ScheduleOutcome) -> None: ...


@runtime_checkable
class ScheduleHistoryObserver(Protocol):
    """An observer that shows each schedule's past (the metrics): told, when the
    daemon starts, what the state database remembers, so a restart shows no gap."""

    def schedules_before(self, times: Mapping[str, ScheduleTimes]) -> None: ...


class Scheduler:
    """Runs the schedules of a configuration.

    :param call_observer: told of every appliance call (the daemon's metrics).
    :param reporter: where each item's progress goes.
    :param observers: told of every schedule run.
    :param stop: set to end runs after the items in hand.
    :param clock: the time now (tests pass a simulated one).
    :param items_on_console: each item's log line on the terminal too (``-v``).
    :param executor: ``local`` or ``celery``, instead of ``[executor] kind``. With
        ``celery`` a run enqueues the schedule's transfers as tasks for
        ``btic worker`` processes (:mod:`btic.executor`) and counts as run once
        they are enqueued (status ``queued``).
    :raises ConfigError: when the executor is distributed and the configuration
        cannot serve it (no broker, a SQLite state database).
    """

    def __init__(
        self,
        config: Config,
        plugins: PluginManager,
        state: StateStore,
        *,
        log: FilteringBoundLogger,
        call_observer: CallObserver | None = None,
        reporter: Reporter | None = None,
        observers: Sequence[ScheduleObserver] = (),
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = utc_now,
        items_on_console: bool = False,
        executor: str | None = None,
    ):
        self.config = config
        self.plugins = plugins
        self.state = state
        self.log = log
        # One client, and so one token, per site for every run this scheduler makes.
        self._spool = RunSpool(spool_parent(config.state_url))
        self.clients = ClientPool(config, spool_dir=self._spool.path, observer=call_observer)
        self.reporter = reporter or SilentReporter()
        self.observers = list(observers)
        self.stop = stop or threading.Event()
        self.clock = clock
        self.items_on_console = items_on_console
        self.leases = Leases(state, f"scheduler-{uuid.uuid4()}")
        self.executor = executor or config.executor.kind
        self.dispatcher: Dispatcher | None = None
        if self.executor == "celery":
            from btic.executor.dispatch import Dispatcher

            self.dispatcher = Dispatcher(config, state)

    def reconfigure(
        self,
        config: Config,
        *,
        log: FilteringBoundLogger | None = None,
        observers: Sequence[ScheduleObserver] | None = None,
    ) -> None:
        """Use ``config`` (and its logger and observers) for runs that start from now
        on; running ones keep theirs. The executor's kind stays as it started; a
        changed broker is used from now on."""
        if self.dispatcher is not None and config.executor != self.config.executor:
            from btic.executor.dispatch import Dispatcher

            replacement = Dispatcher(config, self.state)
            self.dispatcher.close()
            self.dispatcher = replacement
        self.config = config
        self.clients.reconfigure(config)
        if log is not None:
            self.log = log
        if observers is not None:
            self.observers = list(observers)

    def enabled(self) -> list[str]:
        return [name for name, settings in self.config.schedules.items() if settings.enabled]

    def choose(self, names: Iterable[str], *, anyway: bool = False) -> schedule.Choice:
        """Which of ``names`` are due now, and when the others will be."""
        periods = {name: self.config.schedules[name].period() for name in names}
        return schedule.choose(periods, self.state.last_slots(periods), self.clock(), anyway=anyway)

    def claim(self, name: str, slot: datetime, *, anyway: bool = False) -> str | None:
        """Take schedule ``name``'s lease to run ``slot``: None when it is this
        process's to run, else why not (a line for the output)."""
        lease = schedule_lease(name)
        holder = self.leases.acquire(lease)
        if holder == self.leases.owner:
            return f"schedule {name}: still running here since its last slot; not started again"
        if holder is not None:
            return f"schedule {name}: being run by another process ({holder}); not here"
        # Another process may have run the slot between our look and our lease.
        last = self.state.last_slots([name])[name]
        if not anyway and last is not None and last >= slot:
            self.leases.release([lease])
            return f"schedule {name}: already run for this slot by another process"
        return None

    def run(self, name: str, slot: datetime) -> ScheduleOutcome:
        """Run a claimed schedule, record it and tell the observers; give back its lease.

        :raises Exception: when btic itself failed (a BticError: the state
            database, a plugin that cannot be configured; anything else: a bug):
            the slot is not recorded.
        """
        if self.dispatcher is not None:
            return self._enqueue(self.dispatcher, name, slot)
        from btic.progress import summary_text

        config = self.config
        settings = config.schedules[name]
        requests = [
            TransferRequest(
                site=transfer.site,
                destinations=tuple(transfer.destinations),
                data_types=tuple(transfer.data),
                incremental=True,
                command_shell_format=transfer.command_shell_format,
            )
            for transfer in settings.transfers
        ]
        started = self.clock()
        previous: str | None = None
        summary = Summary()
        run: CommandRun | None = None
        try:
            previous = self.state.schedule_status(name)
            run = CommandRun(
                config,
                self.plugins,
                "sync",
                reporter=self.reporter,
                log=self.log,
                schedule=name,
                clients=self.clients,
                stop=self.stop,
                items_on_console=self.items_on_console,
            )
            with run:
                summary = run.transfer(requests)
                run.note_given_up(summary, [request.site for request in requests])
            interrupted = self.stop.is_set()
            status = run.record(summary, summary_text(summary), interrupted=interrupted)
            if not interrupted:
                self.state.record_schedule_run(name, slot, status, started)
        except Exception as exc:
            # btic's own failure (or a plugin's bug): the slot stays owed, the run says
            # why, observers hear it, and the caller reports it.
            error = own_failure(exc)
            summary.problem(f"schedule {name}: btic failed: {error}")
            if run is not None:
                run.record_failure(error)
            self._tell(self._outcome(name, slot, RunStatus.ERROR, run, summary, started, previous))
            raise
        finally:
            self.leases.release([schedule_lease(name)])
        outcome = self._outcome(name, slot, status, run, summary, started, previous)
        self._tell(outcome)
        return outcome

    def _enqueue(self, dispatcher: Dispatcher, name: str, slot: datetime) -> ScheduleOutcome:
        """Hand a claimed schedule's transfers to the workers and record the slot."""
        started = self.clock()
        summary = Summary()
        previous: str | None = None
        try:
            previous = self.state.schedule_status(name)
            tasks = dispatcher.enqueue(self.config, name, slot)
            self.state.record_schedule_run(name, slot, RunStatus.QUEUED, started)
        except Exception as exc:
            error = own_failure(exc)
            summary.problem(f"schedule {name}: btic failed: {error}")
            self._tell(self._outcome(name, slot, RunStatus.ERROR, None, summary, started, previous))
            raise
        finally:
            self.leases.release([schedule_lease(name)])
        summary.note(
            f"schedule {name}: {len(tasks)} task(s) enqueued: "
            + "; ".join(f"{task.label} ({task.task_id})" for task in tasks)
        )
        outcome = self._outcome(name, slot, RunStatus.QUEUED, None, summary, started, previous)
        self._tell(outcome)
        return outcome

    def _outcome(
        self,
        name: str,
        slot: datetime,
        status: RunStatus,
        run: CommandRun | None,
        summary: Summary,
        started: datetime,
        previous: str | None,
    ) -> ScheduleOutcome:
        transfers = self.config.schedules[name].transfers
        return ScheduleOutcome(
            name=name,
            slot=slot,
            status=status,
            run_id=run.run_id if run is not None else "",
            summary=summary,
            started_at=started,
            finished_at=self.clock(),
            previous_status=previous,
            sites=tuple(dict.fromkeys(t.site for t in transfers)),
            destinations=tuple(dict.fromkeys(d for t in transfers for d in t.destinations)),
        )

    def run_due(
        self, names: Iterable[str], *, anyway: bool = False
    ) -> tuple[list[ScheduleOutcome], list[str]]:
        """Run those of ``names`` that are due (all with ``anyway``) at the same
        time and wait for them; return their outcomes and the lines saying
        which did not run and when they will.

        :raises BticError: the first of btic's own failures, after every other
            schedule has finished.
        """
        choice = self.choose(names, anyway=anyway)
        periods = {name: self.config.schedules[name].period() for name, _ in choice.waiting}
        notes = schedule.waiting_lines(choice, periods)
        claimed = []
        for name, slot in choice.due:
            refusal = self.claim(name, slot, anyway=anyway)
            if refusal is None:
                claimed.append((name, slot))
            else:
                notes.append(refusal)
        if not claimed:
            return [], notes
        with ThreadPoolExecutor(len(claimed), thread_name_prefix="btic-schedule") as pool:
            futures = [pool.submit(self.run, name, slot) for name, slot in claimed]
        outcomes, errors = [], []
        for future in futures:
            error = future.exception()
            if error is None:
                outcomes.append(future.result())
            else:
                errors.append(error)
        if errors:
            raise errors[0]
        return outcomes, notes

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.close()
        self.leases.close()
        self.clients.close()
        self._spool.close()

    def _tell(self, outcome: ScheduleOutcome) -> None:
        tell(self.observers, outcome, self.log)


def tell(
    observers: Iterable[ScheduleObserver], outcome: ScheduleOutcome, log: FilteringBoundLogger
) -> None:
    """Tell each observer how a run went; one that fails is logged, never raised."""
    for observer in observers:
        try:
            observer.schedule_ran(outcome)
        except Exception:
            log.exception(
                "could not report the schedule's run",
                schedule=outcome.name,
                run_id=outcome.run_id,
                observer=type(observer).__name__,
            )
