"""The state database's tables and the statuses its ledger uses."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from btic.statuses import LedgerStatus, RunStatus

#: 2: btic_deliveries.size is a BIGINT (recordings over 2 GiB).
#: 3: btic_deliveries.plain_sha256 (a sealed item's plaintext sha256) and
#: verified_at (when ``btic verify`` last found the item as delivered).
SCHEMA_VERSION = 3
#: An appliance that answers "no such item" this many runs in a row is believed.
MAX_ATTEMPTS = 5


class StatusText(TypeDecorator[str]):
    """A status column: binds a :class:`Status` as its text (some drivers, psycopg
    among them, would otherwise store an enum's name)."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: object, dialect: object) -> str | None:
        return None if value is None else str(value)


DELIVERED, SKIPPED, FAILED, EXPIRED = (
    LedgerStatus.DELIVERED,
    LedgerStatus.SKIPPED,
    LedgerStatus.FAILED,
    LedgerStatus.EXPIRED,
)
GIVEN_UP, NO_RECORDING = LedgerStatus.GIVEN_UP, LedgerStatus.NO_RECORDING
REMOVED = LedgerStatus.REMOVED
#: Statuses that settle an item: it is not fetched again unless forced.
SETTLED = (DELIVERED, SKIPPED, EXPIRED, NO_RECORDING, REMOVED)

#: The width of btic_deliveries.item_key; longer keys are stored hashed.
ITEM_KEY_LENGTH = 255
#: The width of btic_locks.name.
LOCK_NAME_LENGTH = 128

metadata = MetaData()

meta_table = Table(
    "btic_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

deliveries = Table(
    "btic_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("data_type", String(32), nullable=False),
    Column("item_key", String(ITEM_KEY_LENGTH), nullable=False),
    Column("status", StatusText(), nullable=False),
    Column("location", Text),
    Column("size", BigInteger),
    Column("sha256", String(64)),
    # Set when the item was stored sealed to age recipients (``sha256`` is then the
    # sealed file's): what an auditor's decrypted copy must hash to.
    Column("plain_sha256", String(64)),
    # When btic verify last found the item as delivered (None: not since delivered).
    Column("verified_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("item_time", DateTime(timezone=True)),
    Column("run_id", String(36)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("site", "destination", "data_type", "item_key", name="uq_btic_delivery"),
)

watermarks = Table(
    "btic_watermarks",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("data_type", String(32), primary_key=True),
    Column("destination", String(64), primary_key=True),
    Column("position", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "btic_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("schedule", String(64)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", StatusText(), nullable=False),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("summary", Text),
)

#: Each schedule's last run: the slot it covered (see btic.schedule) and how it went.
schedules = Table(
    "btic_schedules",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("last_slot", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("status", StatusText(), nullable=False),
)

locks = Table(
    "btic_locks",
    metadata,
    Column("name", String(LOCK_NAME_LENGTH), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

#: Transfers handed to Celery workers (``[executor] kind = "celery"``): one row per
#: task, so ``btic status`` can say what is queued, running and retried per site.
#: Added without a schema version change: older btic versions ignore the table.
tasks = Table(
    "btic_tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("schedule", String(64), nullable=False),
    Column("slot", DateTime(timezone=True), nullable=False),
    Column("site", String(64), nullable=False),
    Column("transfer", String(255), nullable=False),
    Column("status", StatusText(), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker", String(255)),
    Column("run_id", String(36)),
    Column("detail", Text),
    Column("enqueued_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)

#: Finding a session's items, and the items retention is due for: the ledger's
#: unique key leads with the destination, which these questions do not know or
#: narrow by time. Created on existing databases too (see StateStore._prepare).
ledger_indexes = (
    Index("ix_btic_deliveries_item", deliveries.c.site, deliveries.c.item_key),
    Index(
        "ix_btic_deliveries_age",
        deliveries.c.destination,
        deliveries.c.status,
        deliveries.c.item_time,
    ),
)

# Generic types with a collation, not the dialects' own VARCHARs: the DDL is the
# same, and importing sqlalchemy.dialects.postgresql and .mysql cost every
# command ~70 ms of start-up whatever database it used.
_BINARY_TERM = (
    String(200)
    .with_variant(String(200, collation="C"), "postgresql")
    .with_variant(String(200, collation="utf8mb4_bin"), "mysql", "mariadb")
)

#: The sessions btic archived, for ``btic find`` (see btic.summaries): one row each,
#: and their search terms. Added without a schema version change: older btic
#: versions ignore the tables.
sessions_index = Table(
    "btic_sessions",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("lsid", String(255), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("product", String(8), nullable=False),
    Column("start_time", DateTime(timezone=True)),
    Column("end_time", DateTime(timezone=True)),
    Column("external_key", String(255)),
    Column("people", Text),
    Column("customers", Text),
    #: the ledger keys of its items: the lsid, and ``lsid#instance`` of each numbered
    #: recording its report lists, one per line
    Column("item_keys", Text),
    Index("ix_btic_sessions_end", "end_time"),
    Index("ix_btic_sessions_key", "external_key"),
    Index("ix_btic_sessions_lsid", "lsid"),
)

session_terms = Table(
    "btic_session_terms",
    metadata,
    Column("kind", String(16), primary_key=True),
    # Compared in code-point order on every database, so a prefix is a range.
    Column("term", _BINARY_TERM, primary_key=True),
    Column("site", String(64), primary_key=True),
    Column("lsid", String(255), primary_key=True),
    Index("ix_btic_session_terms_session", "site", "lsid"),
)

#: Each item a retention rule removed: when, by which rule, in which run (its ledger
#: row says ``removed``).
removals = Table(
    "btic_removals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("data_type", String(32), nullable=False),
    Column("item_key", String(ITEM_KEY_LENGTH), nullable=False),
    Column("location", Text),
    Column("sha256", String(64)),
    Column("rule", String(255), nullable=False),
    Column("run_id", String(36)),
    Column("removed_at", DateTime(timezone=True), nullable=False),
    Index("ix_btic_removals_item", "site", "item_key"),
)

#: Each signed digest written into a destination (btic.integrity): the chain's end
#: for the next digest, and what ``btic verify`` expects to find there.
digests = Table(
    "btic_digests",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("run_id", String(36), nullable=False),
    Column("location", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Legal holds: a held session's items are deleted by no retention rule.
holds = Table(
    "btic_holds",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("lsid", String(255), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("held_by", String(255), nullable=False),
    Column("held_at", DateTime(timezone=True), nullable=False),
)

#: Each destination's own values by item key (``ctx.state``, see btic.types.DestinationState).
#: Added without a schema version change: older btic versions ignore the table.
destination_values = Table(
    "btic_destination_values",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("item_key", String(ITEM_KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: The last ``btic verify`` of each destination, as it ended: what the viewer's
#: integrity page shows. Added without a schema version change, like the above.
verifications = Table(
    "btic_verifications",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    #: the report as JSON (btic.verify.DestinationReport.as_json)
    Column("report", Text, nullable=False),
)

#: A task's statuses: waiting in the broker, being run, put back because its site
#: had its fill of tasks, and how it ended (``ok``, ``failed``, ``interrupted``,
#: ``error`` as runs end).
TASK_QUEUED, TASK_RUNNING, TASK_RETRIED = RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.RETRIED
