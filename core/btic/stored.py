"""What a plugin is told of an item the ledger (or a digest) says a destination holds."""

from __future__ import annotations

from datetime import datetime

from btic.config import Config
from btic.state.entries import LedgerEntry
from btic.types import DataType, ItemKey, StoredItem


def stored_item(
    config: Config,
    *,
    site: str,
    data_type: DataType,
    ledger_key: str,
    location: str | None,
    size: int | None,
    sha256: str | None,
    item_time: datetime | None,
) -> StoredItem:
    """A :class:`~btic.types.StoredItem` from a ledger row's values (``site`` is the
    configuration's name for it, ``ledger_key`` the row's key)."""
    info = config.site_info(site)
    return StoredItem(
        site=info,
        data_type=data_type,
        item_key=ItemKey.from_ledger(info.host, data_type, ledger_key),
        location=location or "",
        size=size,
        sha256=sha256,
        item_time=item_time,
    )


def stored_item_of(config: Config, entry: LedgerEntry) -> StoredItem:
    """The :class:`~btic.types.StoredItem` a ledger row describes."""
    return stored_item(
        config,
        site=entry.site,
        data_type=DataType(entry.data_type),
        ledger_key=entry.item_key,
        location=entry.location,
        size=entry.size,
        sha256=entry.sha256,
        item_time=entry.item_time,
    )
