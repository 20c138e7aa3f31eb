"""Values as the state database keeps them: UTC times, keys that fit their columns."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from btic.state.schema import ITEM_KEY_LENGTH


def now() -> datetime:
    return datetime.now(timezone.utc)


def fit_column(value: str, width: int) -> str:
    """``value`` as a column of ``width`` holds it: whole when it fits, else a prefix
    and its hash, so any value has one row (and always the same one)."""
    if len(value) <= width:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[: width - 72]}~sha256:{digest}"


def stored_key(key: str) -> str:
    """``key`` as the ledger stores it (any lsid an appliance sends has a row)."""
    return fit_column(key, ITEM_KEY_LENGTH)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime."""
    # SQLite hands back naive datetimes; everything here is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)
