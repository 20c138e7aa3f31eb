"""``btic run``: the daemon that runs the schedules, in the foreground.

Every minute (sooner when a slot comes) the daemon asks its
:class:`~btic.scheduler.Scheduler` which schedules are due and starts each
in a thread of its own, so a nightly backup that takes an hour does not hold
up a schedule of every 15 minutes; a schedule still running is not started
again, and one run by another daemon on the same state database is left to
it (the scheduler's lease).

It keeps one appliance client, and so one OAuth token, per site for as long
as it runs. SIGHUP, or a change of the configuration file, reloads the
configuration; a configuration that does not load leaves the old one running
and says why. A stop request (SIGTERM, SIGINT) lets the runs finish the items
in hand and waits for them up to a bound; what is still running then is
abandoned, which the ledger and the leases are made for (the next run
finishes it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from structlog.typing import FilteringBoundLogger

from btic.appliance.connection import CallObserver
from btic.config import Config
from btic.digests import write_heartbeats
from btic.errors import BticError, ConfigError
from btic.notify import notifiers
from btic.plugins import PluginManager
from btic.scheduler import (
    ScheduleHistoryObserver,
    ScheduleObserver,
    ScheduleOutcome,
    Scheduler,
    utc_now,
)
from btic.state import StateStore
from btic.statuses import RunStatus
from btic.systemd import Notifier
from btic.transfer import Reporter, Tally

if TYPE_CHECKING:
    from btic.executor.dispatch import TaskSnapshot

#: The longest the daemon sleeps between looks at the schedules (the guide: every minute).
TICK = timedelta(minutes=1)
#: How long a stop request waits for the runs in hand before abandoning them.
STOP_TIMEOUT = timedelta(seconds=30)
#: How often, at most, the daemon looks for destinations owed their hourly digest.
HEARTBEAT_CHECK = timedelta(minutes=5)


@dataclass(frozen=True)
class Stopped:
    """How the daemon ended.

    :ivar abandoned: schedule runs still working when the wait ran out.
    :ivar failed: runs that ended ``failed`` (what ``--once`` exits 1 for).
    """

    abandoned: tuple[str, ...]
    failed: tuple[str, ...]


class Daemon:
    """Runs the schedules of a configuration until asked to stop.

    :param load: loads the configuration (again, on reload).
    :param config_path: the file watched for changes.
    :param config: the configuration already loaded, if any (else ``load()``).
    :param log_for: the logger of a configuration (its [logging] section).
    :param once: run what is due, wait for it, and stop.
    :param extra_observers: told of every schedule run besides the e-mail
        notifier (the metrics).
    :param reporter: told of every item (the metrics).
    :param call_observer: told of every appliance call (the metrics).
    :param clock: the time now; :param wait: sleeps up to the given seconds
        unless woken (tests pass simulated ones).
    :param executor: ``local`` or ``celery`` instead of ``[executor] kind`` (see
        :class:`~btic.scheduler.Scheduler`).
    """

    def __init__(
        self,
        load: Callable[[], Config],
        plugins: PluginManager,
        *,
        config_path: Path | None,
        config: Config | None = None,
        log_for: Callable[[Config], FilteringBoundLogger],
        once: bool = False,
        extra_observers: tuple[ScheduleObserver, ...] = (),
        reporter: Reporter | None = None,
        call_observer: CallObserver | None = None,
        clock: Callable[[], datetime] = utc_now,
        wait: Callable[[float], None] | None = None,
        stop_timeout: timedelta = STOP_TIMEOUT,
        executor: str | None = None,
        notifier: Notifier | None = None,
    ):
        self._load = load
        self.plugins = plugins
        self.config_path = config_path
        self.log_for = log_for
        self.once = once
        self.extra_observers = extra_observers
        self.reporter = reporter
        self.call_observer = call_observer
        self.executor = executor
        #: systemd's READY/WATCHDOG/STOPPING (inert when not under systemd)
        self.notifier = notifier or Notifier(None)
        self.clock = clock
        self._wait = wait
        self.stop_timeout = stop_timeout
        #: set to stop after the items in hand
        self.stop = threading.Event()
        self._wake = threading.Event()
        self._reload_asked = False
        self._runs: dict[str, threading.Thread] = {}
        self._runs_lock = threading.Lock()
        self._failed: list[str] = []
        self._file_seen: tuple[int, int] | None = None
        self.started_at = clock()
        self.config = config or load()
        self.log = log_for(self.config)
        self.scheduler: Scheduler | None = None
        self.state: StateStore | None = None
        self._heartbeat_due = clock()

    # -- requests from outside (signal handlers) -----------------------------------------

    def request_stop(self) -> None:
        self.stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload_asked = True
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> Stopped:
        """Run until :meth:`request_stop` (or, with ``once``, until what is due ran)."""
        config = self.config
        self._file_seen = self._file_signature()
        state = self.state = StateStore(config.state_url)
        remembered = state.schedule_times(config.schedules)
        for observer in self.extra_observers:
            if isinstance(observer, ScheduleHistoryObserver):
                observer.schedules_before(remembered)
        self.scheduler = Scheduler(
            config,
            self.plugins,
            state,
            log=self.log,
            call_observer=self.call_observer,
            reporter=self.reporter,
            observers=self._observers(config),
            stop=self.stop,
            clock=self.clock,
            executor=self.executor,
        )
        self.log.info(
            "btic run started",
            schedules=self.scheduler.enabled(),
            config=str(self.config_path) if self.config_path else None,
            pid=os.getpid(),
        )
        self.notifier.ready(f"{len(self.scheduler.enabled())} schedules")
        try:
            while not self.stop.is_set():
                # The loop itself is what the watchdog watches: a scheduler stuck
                # anywhere in it stops the pings, and systemd restarts the service.
                self.notifier.alive()
                self._reload_if_changed()
                waiting = self._start_due()
                if self.once:
                    self.join_runs()
                    break
                self._heartbeat(state)
                self._sleep(waiting)
            self.notifier.stopping("finishing the items in hand")
            abandoned = self._finish_runs()
        finally:
            if not self._running():
                self.scheduler.close()
                state.close()
        self.log.info("btic run stopped", abandoned=list(abandoned))
        return Stopped(tuple(abandoned), tuple(self._failed))

    def _heartbeat(self, state: StateStore) -> None:
        """Between runs, and every few minutes at most (a destination this process
        cannot reach is not retried each tick): each destination's chain gets its
        hourly digest."""
        if self._running() or self.clock() < self._heartbeat_due:
            return
        self._heartbeat_due = self.clock() + HEARTBEAT_CHECK
        write_heartbeats(self.config, self.plugins, state, log=self.log, clock=self.clock)

    def _start_due(self) -> list[tuple[str, datetime]]:
        """Start the due schedules; return the others with when they come due."""
        assert self.scheduler is not None
        scheduler = self.scheduler
        choice = scheduler.choose(scheduler.enabled())
        for name, slot in choice.due:
            if self.stop.is_set():
                break
            with self._runs_lock:
                if name in self._runs and self._runs[name].is_alive():
                    continue
            refusal = scheduler.claim(name, slot)
            if refusal is not None:
                self.log.info(refusal, schedule=name)
                continue
            thread = threading.Thread(
                target=self._run_one, args=(name, slot), name=f"btic-schedule-{name}", daemon=True
            )
            with self._runs_lock:
                self._runs[name] = thread
            thread.start()
        return choice.waiting

    def _run_one(self, name: str, slot: datetime) -> None:
        assert self.scheduler is not None
        self.log.info("schedule started", schedule=name, slot=slot.isoformat())
        try:
            outcome = self.scheduler.run(name, slot)
        except BticError as exc:
            # btic's own failure (the state database, a plugin): the slot runs again.
            self.log.error(f"schedule {name} did not run: {exc}", schedule=name)
            self._failed.append(name)
            return
        except Exception:
            self.log.exception(f"schedule {name} did not run: a bug in btic", schedule=name)
            self._failed.append(name)
            return
        self._report(outcome)

    def _report(self, outcome: ScheduleOutcome) -> None:
        log = self.log.bind(schedule=outcome.name, run_id=outcome.run_id)
        for problem in dict.fromkeys(outcome.summary.problems):
            log.error(problem)
        for line in outcome.summary.given_up:
            log.warning(f"given up: {line}")
        for line in dict.fromkeys(outcome.summary.notes):
            log.info(line)
        totals = Tally()
        for tally in outcome.summary.tallies.values():
            totals.add(tally)
        log.info(
            "schedule finished",
            status=outcome.status,
            seconds=round((outcome.finished_at - outcome.started_at).total_seconds(), 3),
            **asdict(totals),
        )
        if outcome.status == RunStatus.FAILED:
            self._failed.append(outcome.name)

    def _sleep(self, waiting: list[tuple[str, datetime]]) -> None:
        # Schedules due but not startable (running, or another daemon's) wait a tick.
        seconds = TICK.total_seconds()
        ping_every = self.notifier.ping_every
        if ping_every is not None:
            seconds = min(seconds, ping_every)
        if waiting:
            next_due = min(when for _, when in waiting)
            seconds = min(seconds, max((next_due - self.clock()).total_seconds(), 1.0))
        if self._wait is not None:
            self._wait(seconds)
        else:
            self._wake.wait(seconds)
        self._wake.clear()

    def _running(self) -> list[str]:
        with self._runs_lock:
            return [name for name, thread in self._runs.items() if thread.is_alive()]

    def join_runs(self, timeout: float | None = None) -> list[str]:
        """Wait for the runs in hand (up to ``timeout`` seconds); return those still running."""
        with self._runs_lock:
            threads = list(self._runs.values())
        deadline = None if timeout is None else self.clock().timestamp() + timeout
        for thread in threads:
            left = None if deadline is None else max(deadline - self.clock().timestamp(), 0)
            thread.join(left)
        return self._running()

    def _finish_runs(self) -> list[str]:
        if self._running():
            self.log.info(
                "stopping: the runs in hand finish their items",
                running=self._running(),
                wait_seconds=self.stop_timeout.total_seconds(),
            )
        abandoned = self.join_runs(self.stop_timeout.total_seconds())
        if abandoned:
            self.log.warning(
                "stopping: runs abandoned with items in hand; the next run finishes them",
                abandoned=abandoned,
            )
        return abandoned

    def task_snapshot(self) -> TaskSnapshot | None:
        """With the celery executor, the tasks as the metrics show them; else None."""
        if self.scheduler is None or self.scheduler.dispatcher is None:
            return None
        return self.scheduler.dispatcher.snapshot()

    def overdue(self) -> list[str]:
        """The enabled schedules not running here whose slot came more than a grace
        (their period, from 5 minutes to an hour) ago without a run (``/healthz``)."""
        if self.scheduler is None or self.state is None:
            return []
        names = self.scheduler.enabled()
        last_slots = self.state.last_slots(names)
        running = set(self._running())
        now = self.clock()
        late = []
        for name in names:
            if name in running:
                continue
            period = self.config.schedules[name].period()
            last = last_slots[name]
            due_at = self.started_at if last is None else period.next_slot(last)
            grace = min(max(period.every, timedelta(minutes=5)), timedelta(hours=1))
            if now > max(due_at, self.started_at) + grace:
                late.append(name)
        return late

    # -- the configuration ---------------------------------------------------------------

    def _observers(self, config: Config) -> list[ScheduleObserver]:
        return [*notifiers(config, self.log), *self.extra_observers]

    def _file_signature(self) -> tuple[int, int] | None:
        if self.config_path is None:
            return None
        try:
            stat = self.config_path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _reload_if_changed(self) -> None:
        signature = self._file_signature()
        asked, self._reload_asked = self._reload_asked, False
        if not asked and signature == self._file_seen:
            return
        self._file_seen = signature
        assert self.scheduler is not None
        try:
            config = self._load()
            if config.state_url != self.config.state_url:
                self.log.error(
                    "configuration not reloaded: state.url changed; restart btic run to use "
                    "another state database",
                    config=str(self.config_path),
                )
                return
            log = self.log_for(config)
            self.scheduler.reconfigure(config, log=log, observers=self._observers(config))
        except ConfigError as exc:
            self.log.error(
                "configuration not reloaded; the previous one stays in use",
                config=str(self.config_path),
                problems=exc.lines(),
            )
            return
        self.config = config
        self.log = log
        self.log.info(
            "configuration reloaded",
            config=str(self.config_path),
            schedules=self.scheduler.enabled(),
        )
