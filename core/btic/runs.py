"""A run of a command that moves data: its state database, engine and record.

:class:`CommandRun` opens the state database, records the run in it, makes
the :class:`~btic.transfer.Engine`, and at the end records how the run went.
A failure of the state database at any point becomes one
:class:`~btic.state.StateError` naming it, never a traceback: what was
recorded before it stays, and the next run finishes the job.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterable
from contextlib import ExitStack
from types import TracebackType

from structlog.typing import FilteringBoundLogger

from btic.config import Config
from btic.errors import InterruptedByService, InterruptedByUser, WorkFailed
from btic.plugins import PluginManager
from btic.processes import process_alive
from btic.state import StateStore, failures_reported
from btic.transfer import Engine, Reporter, Summary


class CommandRun:
    """One ``btic transfer``, ``sync`` or ``import-xml``.

    Use as a context manager around the transfers, then call :meth:`finish`.

    :param kind: what the run is, for the runs table (``transfer``, ``sync``...).
    :param schedule: the schedules it runs, if any.
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
    ):
        self.config = config
        self._guard = failures_reported(config.state_url)
        with self._guard:
            self.state = StateStore(config.state_url)
            # Runs of this machine that died (SIGKILL) would stay "running" forever.
            self.state.interrupt_dead_runs(socket.gethostname(), process_alive)
            self.run_id = self.state.start_run(kind, schedule)
        self.engine = Engine(
            config, plugins, self.state, run_id=self.run_id, reporter=reporter, log=log
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
                "given_up); btic transfer --force tries them again"
            )

    def finish(
        self,
        summary: Summary,
        record: str,
        interrupted_by: list[signal.Signals] | None = None,
    ) -> None:
        """Record how the run went (``record`` is the summary's text).

        :param interrupted_by: the signals that stopped the run, if any.
        :raises Interrupted: when a signal stopped it (exit 130 or 143);
            :class:`WorkFailed` when the summary has failures (they are reported
            already); :class:`~btic.state.StateError` when the record cannot be
            written.
        """
        status = "failed" if summary.failed else "ok"
        if interrupted_by:
            status = "interrupted"
        try:
            with failures_reported(self.config.state_url):
                self.state.finish_run(self.run_id, status, record)
        finally:
            self.state.close()
        if interrupted_by:
            if interrupted_by[0] == signal.SIGINT:
                raise InterruptedByUser("interrupted")
            raise InterruptedByService("stopped")
        if summary.failed:
            raise WorkFailed("the run had failures")
