"""The state database: the ledger of deliveries, watermarks, runs and leases.

* :mod:`btic.state.schema` — the tables and the ledger's statuses;
* :mod:`btic.state.store` — :class:`StateStore`, the one way to read and write them.
"""

from btic.state.schema import (
    DELIVERED,
    EXPIRED,
    FAILED,
    GIVEN_UP,
    LOCK_NAME_LENGTH,
    MAX_ATTEMPTS,
    SCHEMA_VERSION,
    SETTLED,
    SKIPPED,
    deliveries,
    locks,
    meta_table,
    metadata,
    runs,
    watermarks,
)
from btic.state.store import (
    LedgerEntry,
    StateError,
    StateStore,
    as_utc,
    failures_reported,
    fit_column,
    now,
    safe_url,
)

__all__ = [
    "DELIVERED",
    "EXPIRED",
    "FAILED",
    "GIVEN_UP",
    "LOCK_NAME_LENGTH",
    "MAX_ATTEMPTS",
    "SCHEMA_VERSION",
    "SETTLED",
    "SKIPPED",
    "LedgerEntry",
    "StateError",
    "StateStore",
    "as_utc",
    "deliveries",
    "failures_reported",
    "fit_column",
    "locks",
    "meta_table",
    "metadata",
    "now",
    "runs",
    "safe_url",
    "watermarks",
]
