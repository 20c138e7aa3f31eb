"""A row of the ledger as btic reads it back, and which rows are not items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from btic.state.values import as_utc, aware

#: The data types whose items are numbered within a session (``lsid#instance``).
_NUMBERED = frozenset({"command_shell_recording", "show_my_screen_recording"})


def is_session_marker(data_type: str, item_key: str) -> bool:
    """Whether a ledger row only says "every numbered recording of this session is
    delivered" (its key is the bare lsid): a row of the ledger, not an item."""
    return data_type in _NUMBERED and "#" not in item_key


@dataclass(frozen=True)
class LedgerEntry:
    site: str
    destination: str
    data_type: str
    item_key: str
    status: str
    location: str | None
    size: int | None
    sha256: str | None
    attempts: int
    error: str | None
    updated_at: datetime
    item_time: datetime | None = None
    #: a sealed item's plaintext sha256 (None: stored as it came)
    plain_sha256: str | None = None
    #: when btic verify last found it as delivered
    verified_at: datetime | None = None

    @property
    def encrypted(self) -> bool:
        """Whether it was stored sealed to age recipients."""
        return self.plain_sha256 is not None


def ledger_entry(row: Any) -> LedgerEntry:
    """A row of ``btic_deliveries`` as a :class:`LedgerEntry`."""
    return LedgerEntry(
        row.site,
        row.destination,
        row.data_type,
        row.item_key,
        row.status,
        row.location,
        row.size,
        row.sha256,
        row.attempts,
        row.error,
        as_utc(row.updated_at),
        aware(row.item_time),
        row.plain_sha256,
        aware(row.verified_at),
    )
