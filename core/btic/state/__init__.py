"""The state database: the ledger of deliveries, watermarks, runs and leases.

* :mod:`btic.state.schema` — the tables and the ledger's statuses;
* :mod:`btic.state.store` — :class:`StateStore`, the one way to read and write them:
  the ledger itself (its group commit in :mod:`btic.state.batches`), watermarks
  through :mod:`btic.state.watermarks`, runs, schedules and leases through
  :mod:`btic.state.records`, Celery tasks through :mod:`btic.state.tasks`,
  destinations' own values through :mod:`btic.state.destination_values`;
  :mod:`btic.state.values` — times and keys as stored.
"""

from btic.state.entries import LedgerEntry
from btic.state.schema import (
    DELIVERED,
    EXPIRED,
    FAILED,
    GIVEN_UP,
    LOCK_NAME_LENGTH,
    MAX_ATTEMPTS,
    NO_RECORDING,
    REMOVED,
    SCHEMA_VERSION,
    SETTLED,
    SKIPPED,
    TASK_QUEUED,
    TASK_RETRIED,
    TASK_RUNNING,
    deliveries,
    locks,
    meta_table,
    metadata,
    runs,
    tasks,
    watermarks,
)
from btic.state.store import (
    StateError,
    StateStore,
    failures_reported,
    opened_state,
    safe_url,
)
from btic.state.tasks import TaskCounts, heartbeat_lease
from btic.state.values import as_utc, fit_column, now

__all__ = [
    "DELIVERED",
    "EXPIRED",
    "FAILED",
    "GIVEN_UP",
    "LOCK_NAME_LENGTH",
    "MAX_ATTEMPTS",
    "NO_RECORDING",
    "REMOVED",
    "SCHEMA_VERSION",
    "SETTLED",
    "SKIPPED",
    "TASK_QUEUED",
    "TASK_RETRIED",
    "TASK_RUNNING",
    "LedgerEntry",
    "StateError",
    "StateStore",
    "TaskCounts",
    "as_utc",
    "deliveries",
    "failures_reported",
    "fit_column",
    "heartbeat_lease",
    "locks",
    "meta_table",
    "metadata",
    "now",
    "opened_state",
    "runs",
    "safe_url",
    "tasks",
    "watermarks",
]
