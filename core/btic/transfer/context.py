"""What a session run is handed: the transfer it serves (:class:`TransferRequest`)
and the engine's parts it uses (:class:`RunContext`), so the runs need not know
the engine that makes them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from btic.appliance.reports import DateWindow, RelativeWindow, Window
from btic.config import Config
from btic.state import StateStore
from btic.transfer.delivery import Deliverer
from btic.types import DataType


@dataclass(frozen=True)
class TransferRequest:
    """One transfer: a site, destinations, data types, and what to select.

    With ``incremental`` the window comes from the watermarks and moves them
    (``btic sync``); otherwise ``window`` or ``lsids`` select the sessions and
    no watermark moves (``btic transfer``).
    """

    site: str
    destinations: tuple[str, ...]
    data_types: tuple[DataType, ...]
    incremental: bool = False
    window: Window | DateWindow | RelativeWindow | None = None
    lsids: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    #: ``txt``: command shells as their text output (PA's ``format=txt``)
    command_shell_format: str = "flv"


@dataclass(frozen=True)
class RunContext:
    """The engine's parts a session run and its recordings use.

    :ivar deliverer: the one path to a plugin, and the ledger's record of it.
    :ivar stop: set to stop after the items in hand.
    :ivar spool: a new directory for one download, in the run's spool (raises
        :class:`~btic.errors.SpoolError` when it cannot be made).
    :ivar concurrency: recordings downloaded at once; None takes each site's
        ``download_concurrency``.
    """

    config: Config
    state: StateStore
    deliverer: Deliverer
    stop: threading.Event
    spool: Callable[[], Path]
    concurrency: int | None
