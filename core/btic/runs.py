"""A run of a command that moves data: its state database, engine and record.

:class:`CommandRun` opens the state database, records the run in it, makes
the :class:`~btic.transfer.Engine`, and at the end records how the run went.
A failure of the state database at any point becomes one
:class:`~btic.state.StateError` naming it, never a traceback: what was
recorded before it stays, and the next run finishes the job.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from types import TracebackType

from structlog.typing import FilteringBoundLogger

from btic.appliance.pool import ClientPool
from btic.config import Config
from btic.digests import write_digests
from btic.errors import BticError, WorkFailed, interruption
from btic.logs import CONSOLE_KEY
from btic.plugins import PluginManager
from btic.processes import process_alive
from btic.progress import LogReporter
from btic.retention import Retention
from btic.state import StateStore, failures_reported
from btic.statuses import RunStatus
from btic.transfer import Engine, Reporter, Reporters, Summary, TransferRequest


class CommandRun:
    """One ``btic transfer``, ``sync`` or ``import-xml``.

    Use as a context manager around the transfers, then call :meth:`finish`.

    :param kind: what the run is, for the runs table (``transfer``, ``sync``...).
    :param schedule: the schedules it runs, if any.
    :param clients: appliance clients kept across runs (the daemon's), if any.
    :param stop: set to end the run after the items in hand (SIGTERM).
    :param items_on_console: each item's log line shows on the terminal too
        (``-v``); it always goes to the log file.
    """

    def __init__(
        self,
        config: Config,
        plugins: PluginManager,
        kind: str,
        *,
        reporter: Reporter,
        log: FilteringBoundLogger,
        schedule: str | None = None,
        clients: ClientPool | None = None,
        stop: threading.Event | None = None,
        items_on_console: bool = False,
    ):
        self.config = config
        self._guard = failures_reported(config.state_url)
        with self._guard:
            self.state = StateStore(config.state_url)
            # Runs of this machine that died (SIGKILL) would stay "running" forever.
            self.state.interrupt_dead_runs(socket.gethostname(), process_alive)
            self.run_id = self.state.start_run(kind, schedule)
        # Every line this run logs says which run (and schedule) it belongs to.
        self.log = log.bind(run_id=self.run_id, **({"schedule": schedule} if schedule else {}))
        items = LogReporter(self.log.bind(**{CONSOLE_KEY: items_on_console}))
        self.engine = Engine(
            config,
            plugins,
            self.state,
            run_id=self.run_id,
            reporter=Reporters(reporter, items),
            log=self.log,
            clients=clients,
            stop=stop,
        )
        self._stack = ExitStack()

    def __enter__(self) -> CommandRun:
        self._stack.enter_context(failures_reported(self.config.state_url))
        self._stack.callback(self.engine.close)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return self._stack.__exit__(exc_type, exc, traceback)

    def note_given_up(self, summary: Summary, sites: Iterable[str]) -> None:
        """Say, every run, how many items of these sites are given up: a given-up
        item is settled, and must never be settled silently."""
        sites = sorted(set(sites))
        with failures_reported(self.config.state_url):
            count = self.state.count_given_up(sites)
        if count:
            summary.note(
                f"{count} item(s) of {', '.join(sites)} are given up (refused by a destination, "
                "or absent on the appliance run after run): the ledger lists them (status "
                "given_up); btic retry puts them back in the queue"
            )

    def transfer(self, requests: Sequence[TransferRequest]) -> Summary:
        """Run ``requests`` at the same time, as the guide's schedules do ("if you
        wish the transfers to occur simultaneously"); stop early when
        :attr:`Engine.stop` is set. Transfers that share a site, destination and
        data type are kept apart by the engine's leases. Then, unless stopped or a
        dry run, the destinations' retention rules are applied."""
        total = Summary()
        for request in requests:
            self.engine.configure(request.destinations)
        if len(requests) == 1:
            total.merge(self.engine.run(requests[0]))
        else:
            with ThreadPoolExecutor(len(requests), thread_name_prefix="btic-transfer") as pool:
                for summary in pool.map(self._one, requests):
                    total.merge(summary)
        if not any(r.dry_run for r in requests):
            self.conclude([d for r in requests for d in r.destinations], total)
        return total

    def conclude(self, destinations: Sequence[str], summary: Summary) -> None:
        """After the work of a run that wrote to ``destinations`` (configured): their
        retention rules (unless the run was stopped), then its signed digests."""
        if not self.engine.stop.is_set():
            Retention(
                self.config, self.engine.plugins, self.state, run_id=self.run_id, log=self.log
            ).apply(destinations, summary)
        # Even after a stop: what the run did write is what its digest proves.
        write_digests(
            self.config,
            self.engine.plugins,
            self.state,
            run_id=self.run_id,
            destinations=destinations,
            summary=summary,
            log=self.log,
        )

    def _one(self, request: TransferRequest) -> Summary:
        if self.engine.stop.is_set():
            return Summary()
        return self.engine.run(request)

    def record(self, summary: Summary, record: str, *, interrupted: bool = False) -> RunStatus:
        """Record how the run went (``record`` is the summary's text) and close the
        state database; return the status: ``ok``, ``failed`` or ``interrupted``.

        :raises ~btic.state.StateError: when the record cannot be written.
        """
        status = (
            RunStatus.INTERRUPTED
            if interrupted
            else RunStatus.FAILED
            if summary.failed
            else RunStatus.OK
        )
        try:
            with failures_reported(self.config.state_url):
                self.state.flush_records()  # the run's outcomes before the run's record
                self.state.finish_run(self.run_id, status, record)
        finally:
            self.state.close()
        return status

    def record_failure(self, error: str) -> None:
        """Record that btic itself failed during the run (``error``), if the state
        database still answers; the caller reports the failure."""
        with contextlib.suppress(BticError), failures_reported(self.config.state_url):
            self.state.finish_run(self.run_id, RunStatus.ERROR, f"btic failed: {error}")
        self.state.close()

    def finish(
        self,
        summary: Summary,
        record: str,
        interrupted_by: Sequence[signal.Signals] = (),
    ) -> None:
        """Record how the run went, as :meth:`record`, and end the command as it went.

        :raises Interrupted: when a signal stopped it (exit 130 or 143);
            :class:`WorkFailed` when the summary has failures (they are reported
            already); :class:`~btic.state.StateError` when the record cannot be
            written.
        """
        self.record(summary, record, interrupted=bool(interrupted_by))
        if interrupted_by:
            raise interruption(interrupted_by[0])
        if summary.failed:
            raise WorkFailed("the run had failures")
