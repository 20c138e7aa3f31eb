"""The public data types handed to destination plugins.

Plugins never receive raw dicts: a session arrives as
:class:`btic.appliance.model.Session` plus its XML bytes, a recording as a
:class:`Recording`, a backup as a :class:`Backup`; a plugin answers with a
:class:`Delivery` (or None when it skipped the item).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, Protocol

from btic.errors import DestinationError

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from btic.appliance.model import Product, Session


class DataType(str, Enum):
    """The kinds of data a transfer moves (the ``data = [...]`` of a schedule)."""

    SESSION = "session"
    RECORDING = "recording"
    COMMAND_SHELL_RECORDING = "command_shell_recording"
    SHOW_MY_SCREEN_RECORDING = "show_my_screen_recording"
    PRESENTATION = "presentation"
    PRESENTATION_RECORDING = "presentation_recording"
    BACKUP = "backup"

    def __str__(self) -> str:
        return self.value


#: The hook a destination must implement to receive each data type.
HOOK_FOR_DATA_TYPE: dict[DataType, str] = {
    DataType.SESSION: "on_session_xml",
    DataType.PRESENTATION: "on_session_xml",
    DataType.RECORDING: "on_recording",
    DataType.COMMAND_SHELL_RECORDING: "on_recording",
    DataType.SHOW_MY_SCREEN_RECORDING: "on_recording",
    DataType.PRESENTATION_RECORDING: "on_recording",
    DataType.BACKUP: "on_backup",
}

#: Data types an appliance of each product can serve.
PRODUCT_DATA_TYPES: dict[str, frozenset[DataType]] = {
    "rs": frozenset(DataType),
    "pa": frozenset(
        {
            DataType.SESSION,
            DataType.RECORDING,
            DataType.COMMAND_SHELL_RECORDING,
            DataType.BACKUP,
        }
    ),
}

RecordingKind = Literal["session", "command_shell", "show_my_screen", "presentation"]

#: The kind of recording each recording data type moves (the one table of them).
RECORDING_KINDS: dict[DataType, RecordingKind] = {
    DataType.RECORDING: "session",
    DataType.PRESENTATION_RECORDING: "presentation",
    DataType.COMMAND_SHELL_RECORDING: "command_shell",
    DataType.SHOW_MY_SCREEN_RECORDING: "show_my_screen",
}
_DATA_TYPE_OF_KIND: dict[RecordingKind, DataType] = {k: dt for dt, k in RECORDING_KINDS.items()}


#: Data types whose items are numbered within a session (the report's instance).
NUMBERED_DATA_TYPES = frozenset(
    {DataType.COMMAND_SHELL_RECORDING, DataType.SHOW_MY_SCREEN_RECORDING}
)


@dataclass(frozen=True)
class ItemKey:
    """What makes an item "the same item" across runs, processes and workers; a
    destination de-duplicates on it, and every hook that names an item uses it.

    ``str(key)`` is ``host/data_type/id`` (``/instance`` for a numbered recording),
    stable across btic versions, so a destination may store it;
    :meth:`parse` reads it back.

    :ivar host: the appliance's host name (the site's ``host``).
    :ivar data_type: the item's data type.
    :ivar id: the session's lsid, or a backup's appliance time as ``YYYYMMDDTHHMMSSZ``.
    :ivar instance: a command shell or Show My Screen recording's instance, as the
        session report numbers it; None for every other item.
    """

    host: str
    data_type: DataType
    id: str
    instance: int | None = None

    @property
    def parts(self) -> tuple[str, ...]:
        """The key's parts, as ``str()`` joins them."""
        instance = () if self.instance is None else (str(self.instance),)
        return (self.host, self.data_type.value, self.id, *instance)

    @property
    def ledger_key(self) -> str:
        """The key within its site, destination and data type, as the ledger stores it
        (``lsid``, ``lsid#instance`` or a backup's time)."""
        return self.id if self.instance is None else f"{self.id}#{self.instance}"

    def __str__(self) -> str:
        return "/".join(self.parts)

    @classmethod
    def parse(cls, text: str) -> ItemKey:
        """The key ``str()`` wrote.

        :raises ValueError: when ``text`` is not one.
        """
        host, _, rest = text.partition("/")
        kind, _, ident = rest.partition("/")
        try:
            data_type = DataType(kind)
        except ValueError:
            raise ValueError(f"not an item key: {text!r}") from None
        if not host or not ident:
            raise ValueError(f"not an item key: {text!r}")
        if data_type in NUMBERED_DATA_TYPES:
            lsid, _, number = ident.rpartition("/")
            if lsid and number.isdigit():
                return cls(host, data_type, lsid, int(number))
        return cls(host, data_type, ident)

    @classmethod
    def from_ledger(cls, host: str, data_type: DataType, ledger_key: str) -> ItemKey:
        """The key of a ledger row (see :attr:`ledger_key`)."""
        if data_type in NUMBERED_DATA_TYPES:
            lsid, _, number = ledger_key.rpartition("#")
            if lsid and number.isdigit():
                return cls(host, data_type, lsid, int(number))
        return cls(host, data_type, ledger_key)


class DestinationState(Protocol):
    """A destination's own small store of text values by item key, kept in btic's
    state database beside the ledger (so Celery workers on other machines share it):
    a sent-log for a service that cannot de-duplicate, an acknowledgement id to
    confirm later. A value is written at once, in its own transaction, whatever
    becomes of the item's delivery: it says what the service holds, the ledger what
    btic recorded.
    """

    def get(self, key: ItemKey) -> str | None:
        """The value stored for ``key``, or None."""

    def put(self, key: ItemKey, value: str) -> None:
        """Store ``value`` for ``key``, replacing any."""

    def delete(self, key: ItemKey) -> None:
        """Forget ``key`` (nothing happens when it has no value)."""


class MemoryState:
    """A :class:`DestinationState` in memory, for tests: forgotten with the object."""

    def __init__(self) -> None:
        self._values: dict[ItemKey, str] = {}

    def get(self, key: ItemKey) -> str | None:
        return self._values.get(key)

    def put(self, key: ItemKey, value: str) -> None:
        self._values[key] = value

    def delete(self, key: ItemKey) -> None:
        self._values.pop(key, None)


def _nothing_recorded() -> str | None:
    return None


def data_types_for_hooks(hooks: set[str] | frozenset[str]) -> frozenset[DataType]:
    """The data types a plugin implementing ``hooks`` can receive."""
    return frozenset(dt for dt, hook in HOOK_FOR_DATA_TYPE.items() if hook in hooks)


def default_logger() -> FilteringBoundLogger:
    """btic's logger, as configured by the command line (or structlog's defaults)."""
    import structlog  # here: importing structlog costs a quick command a fifth of a second

    logger: FilteringBoundLogger = structlog.get_logger("btic")
    return logger


@dataclass(frozen=True)
class SiteInfo:
    """What a plugin may know about the appliance an item came from.

    :ivar name: the site's name in the configuration (``[sites.NAME]``).
    :ivar host: the appliance's host name (``%SUPPORT_SITE_HOST%``).
    :ivar product: ``rs`` or ``pa``.
    """

    name: str
    host: str
    product: Product


@dataclass(frozen=True)
class Recording:
    """A recording downloaded once by the core and handed to every destination.

    The file at :attr:`path` is complete: its size was verified against the
    appliance's answer and its sha256 computed while it streamed. Read it with
    :meth:`open`; never move or delete it (other destinations read it too).

    :ivar lsid: the session's id.
    :ivar kind: ``session``, ``command_shell``, ``show_my_screen`` or
        ``presentation``.
    :ivar instance: the instance for command shell and Show My Screen
        recordings, as the session report numbers it; None otherwise.
    :ivar extension: without the dot (``flv``, ``mp4``, ``txt``...).
    :ivar session: the report of the session the recording belongs to (for
        file names: external key, lseq, session type, end time).
    """

    site: SiteInfo
    lsid: str
    kind: RecordingKind
    instance: int | None
    extension: str
    size: int
    sha256: str
    path: Path
    session: Session

    @property
    def data_type(self) -> DataType:
        return _DATA_TYPE_OF_KIND[self.kind]

    def open(self) -> IO[bytes]:
        return self.path.open("rb")


@dataclass(frozen=True)
class Backup:
    """A site backup (``.nsb``), downloaded once and handed to every destination.

    :ivar time: the appliance's clock when the backup was taken (UTC).
    """

    site: SiteInfo
    time: datetime
    extension: str
    size: int
    sha256: str
    path: Path

    def open(self) -> IO[bytes]:
        return self.path.open("rb")


@dataclass(frozen=True)
class Delivery:
    """What a destination did with an item: where it went.

    :ivar location: a path, URL, table key or object key a person can find
        the item by.
    :ivar size: bytes written, when the destination knows.
    :ivar sha256: of what was written, when the destination knows.
    :ivar removed: locations of older items the destination removed because
        of this delivery (a backup retention count); counted in the run's
        summary as ``removed``.
    :ivar deferred: the destination took the item into a batch that is not
        durable yet; the core records it when ``on_flush`` has returned.
    """

    location: str
    size: int | None = None
    sha256: str | None = None
    removed: tuple[str, ...] = ()
    deferred: bool = False


@dataclass(frozen=True)
class Placement:
    """Where a session report would go (``on_locate``, for a dry run).

    :ivar location: as ``Delivery.location`` would say it.
    :ivar note: why it would not land under exactly that name, when so (the name
        is another item's: ``AppendNumber`` numbers it).
    """

    location: str
    note: str | None = None

    def __str__(self) -> str:
        return self.location if self.note is None else f"{self.location} ({self.note})"


@dataclass(frozen=True)
class Refusal:
    """An item of a flushed batch that the destination could not store.

    :ivar item_key: the item's ``ctx.item_key``, as it was handed over.
    :ivar error: why, as the destination would have raised it for that item
        alone (``permanent`` when retrying cannot help).
    """

    item_key: ItemKey
    error: DestinationError


@dataclass(frozen=True)
class DeliveryLimits:
    """How a destination wants its items handed over: a plugin sets ``limits`` on
    its class, or on its instance in ``on_configure`` (from its options).

    :ivar concurrency: at most this many of its hooks run at once (None: as many
        as the core's download threads; a batching destination's are one at a time).
    :ivar batch_items: a batching destination is flushed when it holds this many
        deferred items.
    :ivar batch_bytes: ... or before an item would take its batch past this many
        bytes (a session's XML, a recording's or backup's size); None: no budget.
        An item larger than the budget alone goes in a batch of its own.
    :ivar batch_seconds: ... or when its batch is this old.
    """

    concurrency: int | None = None
    batch_items: int = 500
    batch_bytes: int | None = None
    batch_seconds: float = 2.0

    def __post_init__(self) -> None:
        for name in ("concurrency", "batch_items", "batch_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"DeliveryLimits.{name} must be a positive integer, not {value!r}")
        if not self.batch_seconds > 0:
            raise ValueError("DeliveryLimits.batch_seconds must be positive")


@dataclass(frozen=True)
class AppContext:
    """What the core tells a destination when it is configured.

    :ivar config_dir: the directory of the configuration file; relative paths
        in a destination's options are relative to it.
    :ivar version: btic's version.
    :ivar log: a structlog logger bound to the destination's name.
    """

    config_dir: Path
    version: str
    log: FilteringBoundLogger = field(default_factory=default_logger, compare=False)


@dataclass(frozen=True)
class TransferContext:
    """The transfer an item belongs to, passed with every item.

    :ivar site: the appliance the item came from.
    :ivar destination: the destination's name (``[destinations.NAME]``).
    :ivar data_type: the data type being delivered.
    :ivar run_id: identifies this run in logs and the ledger.
    :ivar force: True when the user asked to re-deliver items the ledger
        already has (``btic transfer --force``).
    :ivar log: a structlog logger bound to site, destination and run.
    :ivar item_key: what makes this item "the same item" across runs, processes
        and workers (:class:`ItemKey`); a destination de-duplicates on it.
    :ivar state: the destination's own store of values by item key
        (:class:`DestinationState`), shared by every process using the state database.
    :ivar sealed: True when the item's bytes are an age file encrypted to the
        destination's recipients (its ``encrypt`` rule): the ``xml`` of a session,
        the file of a recording or backup. Store them as given, under a name ending
        in ``.age`` (a recording's or backup's ``extension`` already ends so; a
        session's is :func:`btic.naming.session_extension`), and write nothing
        derived from the session's content beside them. Only plugins whose class
        sets ``accepts_sealed = True`` are given sealed items.
    :ivar plain_sha256: when ``sealed``, the sha256 of the item before it was
        sealed. Two sealed copies of one item differ in every byte (age's file key
        is random), so recognise a copy you hold by this (keep it beside the stored
        item), and answer for it with the stored copy's location, size and sha256.
    """

    site: SiteInfo
    destination: str
    data_type: DataType
    run_id: str
    item_key: ItemKey
    force: bool = False
    sealed: bool = False
    plain_sha256: str | None = None
    log: FilteringBoundLogger = field(default_factory=default_logger, compare=False)
    state: DestinationState = field(default_factory=MemoryState, compare=False, repr=False)
    #: reads the sha256 the ledger last recorded (see :attr:`last_sha256`)
    recorded_sha256: Callable[[], str | None] = field(
        default=_nothing_recorded, compare=False, repr=False
    )

    @cached_property
    def last_sha256(self) -> str | None:
        """The sha256 the ledger last recorded for this item at this destination (what
        an earlier delivery returned), or None: an identical redelivery (``force``, a
        lost ledger's replay) can be recognised by it. Read from the ledger on first use.
        """
        return self.recorded_sha256()


@dataclass(frozen=True)
class StoredItem:
    """What the ledger says one destination holds: one item, for ``on_verify``.

    :ivar site: the appliance the item came from (its name and host).
    :ivar item_key: the item's key, as ``ctx.item_key`` was when it was delivered.
    :ivar location: where the destination said it put the item.
    :ivar size: bytes, when the destination said.
    :ivar sha256: of what was delivered, when the destination said.
    :ivar item_time: the session's end or the backup's time.
    """

    site: SiteInfo
    data_type: DataType
    item_key: ItemKey
    location: str
    size: int | None
    sha256: str | None
    item_time: datetime | None


@dataclass(frozen=True)
class VerifyFinding:
    """Something ``btic verify`` found wrong at a destination.

    :ivar kind: ``missing`` (the ledger has it, the destination not),
        ``changed`` (present, but not the bytes delivered), ``unexpected``
        (the destination holds it, the ledger does not know it); the core adds
        ``tampered`` (an item or a digest that differs from the signed digests,
        however the ledger reads).
    :ivar location: where.
    :ivar detail: what differs, for the user.
    :ivar item_key: the item's key, for missing and changed items.
    """

    kind: Literal["missing", "changed", "unexpected", "tampered"]
    location: str
    detail: str = ""
    item_key: ItemKey | None = None
