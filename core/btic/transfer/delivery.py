"""Delivery bookkeeping: the one path from an item to a plugin, and its outcome
in the ledger.

:class:`Deliverer` hands each item (a session report, a recording, a backup) to
one destination and records what happened: at once, or, for a destination that
batches (``Delivery(deferred=True)``), when its batch is flushed and durable. It
also keeps the run's judgement of each destination: one that fails the same way
:data:`DOWN_AFTER` times in a row is left alone for the rest of the run, and so
is one that stays busy past its patience (:mod:`btic.transfer.pacing`).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime

from structlog.typing import FilteringBoundLogger

from btic.appliance.model import Session
from btic.encryption import EncryptionError
from btic.errors import DestinationBusy, DestinationError, SpoolError
from btic.plugins import PluginManager
from btic.state import DELIVERED, FAILED, MAX_ATTEMPTS, NO_RECORDING, SKIPPED, StateStore
from btic.statuses import LedgerStatus, Transient
from btic.summaries import summarize
from btic.transfer.batches import Batches, Deferred
from btic.transfer.items import Item, SessionDocument, item_key, sha256_of, size_of
from btic.transfer.pacing import Pacing
from btic.transfer.sealing import Sealed, Sealer
from btic.transfer.summary import Reporter, Summary
from btic.types import (
    Backup,
    DataType,
    Delivery,
    DeliveryLimits,
    ItemKey,
    Placement,
    Recording,
    SiteInfo,
    TransferContext,
)

#: Failures in a row, with one cause, after which a destination is left alone for the run.
DOWN_AFTER = 3
#: The outcome of an item a destination took into a batch: recorded when it is flushed.
DEFERRED = Transient.DEFERRED
#: A batching destination is flushed at least this often (items, seconds) unless its
#: plugin's :class:`~btic.types.DeliveryLimits` say otherwise, and at the end of every
#: transfer: its memory stays bounded and its items reach the ledger soon after
#: they are durable.
FLUSH_AFTER_ITEMS = DeliveryLimits.batch_items
FLUSH_AFTER_SECONDS = DeliveryLimits.batch_seconds


#: What became of an item handed over: its ledger status, or why none is recorded yet.
Outcome = LedgerStatus | Transient


class Deliverer:
    """Hands items to destinations and records every outcome in the ledger.

    :param plugins: the configured destinations.
    :param state: the ledger.
    :param run_id: the run the records belong to.
    """

    def __init__(
        self,
        plugins: PluginManager,
        state: StateStore,
        *,
        run_id: str,
        reporter: Reporter,
        log: FilteringBoundLogger,
        scrub: Callable[[str], str] = str,
        stop: threading.Event | None = None,
        sealer: Sealer | None = None,
    ):
        self.plugins = plugins
        #: seals items for destinations that encrypt them (``encrypt = {...}``)
        self.sealer = sealer or Sealer({})
        #: set when the run stops after the items in hand: no more waiting on a busy one
        self.stop = stop or threading.Event()
        # A plugin's error may quote a secret of its options (a password in a message):
        # every error is scrubbed before the ledger, the summary or a notification has it.
        self.scrub = scrub
        self.state = state
        self.run_id = run_id
        self.reporter = reporter
        self.log = log
        # destination -> (cause, failures in a row); destinations left alone this run
        self._streaks: dict[str, tuple[str, int]] = {}
        self._down: dict[str, str] = {}
        self._streak_lock = threading.Lock()
        #: each destination's limits, and its pauses while it is busy
        self.pacing = Pacing(plugins.limits, self.stop, log=log)
        #: what batching destinations hold until they are flushed
        self.batches = Batches(plugins, self.pacing)

    # -- handing over ------------------------------------------------------------------

    def deliver(
        self,
        *,
        destination: str,
        data_type: DataType,
        site: SiteInfo,
        item: Item,
        force: bool,
        summary: Summary,
        item_time: datetime | None = None,
    ) -> Outcome:
        """Hand one item to one destination; record the outcome at once, or when the
        destination's batch is flushed (then :data:`DEFERRED` is returned)."""
        if destination in self._down:
            # Left alone for the rest of the run: the item stays pending, unrecorded.
            summary.count(destination, data_type.value, FAILED)
            return FAILED
        key = item_key(site, data_type, item)
        with ExitStack() as held:
            held.enter_context(self.pacing.gate(destination))
            held.enter_context(self.batches.lock(destination))
            try:
                handed = held.enter_context(self.sealer.handed(destination, data_type, item))
            except (SpoolError, EncryptionError) as exc:
                # This machine's disk or its age install, not the item: nothing is
                # recorded, and the item stays pending.
                summary.problem(f"{destination}: {data_type.value} {key.ledger_key}: {exc}")
                summary.count(destination, data_type.value, FAILED)
                return FAILED
            ctx = self._context(
                destination, data_type, site, key, force, plain_sha256=handed.plain_sha256
            )
            size = size_of(handed.item)
            if self.batches.would_overflow(destination, size):
                self.flush(destination)  # the batch first, then this item
            while True:
                if not self._ready(destination, summary):
                    # Busy past the run's patience, or the run stops: the item stays pending.
                    summary.count(destination, data_type.value, FAILED)
                    return FAILED
                try:
                    result = self._hand_over(destination, handed.item, ctx)
                except DestinationBusy as exc:
                    self.pacing.pause(destination, exc.retry_after, self.scrub(str(exc)))
                    continue
                except DestinationError as exc:
                    return self._settle(
                        ctx, summary, item_time, error=str(exc), give_up=exc.permanent
                    )
                except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop the others
                    self._log_plugin_bug(ctx, ctx.item_key.ledger_key)
                    return self._settle(ctx, summary, item_time, error=_described(exc))
                break
            if result is not None and getattr(result, "deferred", False):
                if self.batches.add(Deferred(ctx, result, item_time, summary, size, handed)):
                    self.flush(destination)
                return DEFERRED
            return self._settle(ctx, summary, item_time, result=result, handed=handed)

    def _context(
        self,
        destination: str,
        data_type: DataType,
        site: SiteInfo,
        key: ItemKey,
        force: bool,
        *,
        plain_sha256: str | None,
    ) -> TransferContext:
        """The context handed with one item: its key, the destination's own values,
        and a reader of the sha256 the ledger last recorded for it."""
        state = self.state

        def recorded_sha256() -> str | None:
            return state.recorded_sha256(
                site=site.name,
                destination=destination,
                data_type=data_type.value,
                item_key=key.ledger_key,
            )

        return TransferContext(
            site=site,
            destination=destination,
            data_type=data_type,
            run_id=self.run_id,
            item_key=key,
            force=force,
            sealed=plain_sha256 is not None,
            plain_sha256=plain_sha256,
            log=self.log,
            state=state.destination_state(destination),
            recorded_sha256=recorded_sha256,
        )

    def _ready(self, destination: str, summary: Summary) -> bool:
        """Whether an item may go to ``destination`` now (after any pause it asked
        for): False when it is left alone for the run, or the run stops."""
        if destination in self._down:
            return False
        waited = self.pacing.wait(destination)
        if waited is None:
            return True
        if not self.stop.is_set():
            with self._streak_lock:
                first = destination not in self._down
                self._down[destination] = "busy"
            if first:
                summary.problem(
                    f"{destination}: still busy after {waited:.0f} s of waiting in this run; "
                    "no more items are offered to it in this run, and they stay pending "
                    "for the next"
                )
        return False

    def _hand_over(self, destination: str, item: Item, ctx: TransferContext) -> Delivery | None:
        if isinstance(item, Recording):
            return self.plugins.on_recording(destination, recording=item, ctx=ctx)
        if isinstance(item, Backup):
            return self.plugins.on_backup(destination, backup=item, ctx=ctx)
        return self.plugins.on_session_xml(destination, session=item.session, xml=item.xml, ctx=ctx)

    def _log_plugin_bug(self, ctx: TransferContext, key: str) -> None:
        self.log.error(
            "plugin raised",
            destination=ctx.destination,
            data_type=ctx.data_type.value,
            key=key,
            traceback=traceback.format_exc(),
        )

    # -- batches ------------------------------------------------------------------------

    def flush(self, destination: str | None = None) -> None:
        """Make the batches of ``destination`` (of every destination when None)
        durable through ``on_flush``, and record their items: delivered, or failed
        with the destination's reason (they stay pending for the next run)."""
        names = [destination] if destination is not None else self.batches.holders()
        for name in names:
            with self.batches.lock(name):
                batch = self.batches.take(name)
                if batch:
                    self._flush_batch(name, batch)

    def _flush_batch(self, destination: str, batch: list[Deferred]) -> None:
        while True:
            if self.pacing.wait(destination) is not None:
                # Busy past the run's patience, or the run stops: the batch was never
                # stored, so its items stay pending, unrecorded.
                self._ready(destination, batch[0].summary)
                for entry in batch:
                    entry.summary.count(destination, entry.ctx.data_type.value, FAILED)
                return
            try:
                refusals = self.plugins.on_flush(destination)
            except DestinationBusy as exc:
                # The plugin keeps its batch; the same flush is asked for again.
                self.pacing.pause(destination, exc.retry_after, self.scrub(str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop the others
                if not isinstance(exc, DestinationError):
                    self._log_plugin_bug(batch[0].ctx, f"a batch of {len(batch)}")
                self._batch_failed(destination, batch, exc)
                return
            break
        refused = {refusal.item_key: refusal.error for refusal in refusals}
        for entry in batch:
            error = refused.get(entry.ctx.item_key)
            if error is None:
                self._settle(
                    entry.ctx, entry.summary, entry.item_time,
                    result=entry.delivery, handed=entry.handed,
                )  # fmt: skip
            else:
                self._settle(
                    entry.ctx, entry.summary, entry.item_time,
                    error=str(error), give_up=error.permanent,
                )  # fmt: skip

    def _batch_failed(self, destination: str, batch: list[Deferred], exc: Exception) -> None:
        """A batch that could not be stored at all is the destination's failure, not
        its items': each item is recorded failed (it stays pending), the cause is
        reported once, and the destination is left alone for the rest of the run."""
        error = self.scrub(str(exc) if isinstance(exc, DestinationError) else _described(exc))
        for entry in batch:
            self._settle(entry.ctx, entry.summary, entry.item_time, error=error, quiet=True)
        with self._streak_lock:
            self._down[destination] = error
        batch[0].summary.problem(
            f"{destination}: a batch of {len(batch)} item(s) could not be stored: {error}; "
            "no more items are offered to it in this run, and they stay pending for the next"
        )

    # -- recording outcomes -------------------------------------------------------------

    def _settle(
        self,
        ctx: TransferContext,
        summary: Summary,
        item_time: datetime | None,
        *,
        result: Delivery | None = None,
        error: str | None = None,
        give_up: bool = False,
        quiet: bool = False,
        handed: Sealed | None = None,
    ) -> Outcome:
        """Record one item's outcome in the ledger, the summary and the progress.

        :param quiet: a failure the caller reports once for many items.
        :param handed: the item as the destination was given it, when delivered:
            a sealed one's plaintext sha256 is recorded beside what was stored.
        """
        destination, data_type, key = ctx.destination, ctx.data_type, ctx.item_key.ledger_key
        status: LedgerStatus = (
            FAILED if error is not None else DELIVERED if result is not None else SKIPPED
        )
        error = None if error is None else self.scrub(error)
        # A plugin may return any object with these attributes; read them defensively.
        location = getattr(result, "location", None)
        size = getattr(result, "size", None)
        sha256 = getattr(result, "sha256", None)
        plain_sha256 = None
        if handed is not None and handed.sealed and result is not None:
            plain_sha256 = handed.plain_sha256
            # What was stored is the sealed copy the core made: its sha256 is known.
            sha256 = sha256 or sha256_of(handed.item)
        # A destination's failure is retried until it ends, however long (a full disk,
        # a database down): only the plugin can say an item itself is unacceptable.
        self.state.record(
            site=ctx.site.name,
            destination=destination,
            data_type=data_type.value,
            item_key=key,
            status=status,
            run_id=self.run_id,
            location=location,
            size=size,
            sha256=sha256,
            plain_sha256=plain_sha256,
            error=error,
            item_time=item_time,
            give_up=give_up,
            # Durable at the destination already: the ledger may take it a moment later.
            soon=True,
        )
        summary.count(destination, data_type.value, status, size)
        summary.removed(destination, data_type.value, len(getattr(result, "removed", ()) or ()))
        self.reporter.delivered(
            ctx.site.name, destination, data_type.value, key, status, location or error or "", size
        )
        if quiet:
            return status
        self._note_streak(destination, status, error, summary)
        if status == FAILED:
            message = f"{destination}: {data_type.value} {key}: {error}"
            summary.problem(message)
            if give_up:
                summary.give_up(
                    f"{message} (the destination refuses this item; given up until btic retry)"
                )
        return status

    def _note_streak(
        self, destination: str, status: LedgerStatus, error: str | None, summary: Summary
    ) -> None:
        """Leave a destination alone for the rest of the run once it has failed the
        same way (the same cause: "No space left on device", "Permission denied")
        DOWN_AFTER times in a row: the rest of its items stay pending, unoffered."""
        with self._streak_lock:
            if status != FAILED or error is None:
                self._streaks.pop(destination, None)
                return
            cause = error.rsplit(": ", 1)[-1]
            previous, count = self._streaks.get(destination, ("", 0))
            count = count + 1 if cause == previous else 1
            self._streaks[destination] = (cause, count)
            if count < DOWN_AFTER or destination in self._down:
                return
            self._down[destination] = cause
        summary.problem(
            f"{destination}: failed {count} times in a row ({cause}); no more items are "
            "offered to it in this run, and they stay pending for the next"
        )

    def mark(
        self,
        *,
        destination: str,
        data_type: DataType,
        key: str,
        site: SiteInfo,
        status: LedgerStatus,
        detail: str,
        summary: Summary,
        count: bool = True,
        given_up_after_repeats: bool = False,
    ) -> None:
        """Record an outcome that needed no hook call (no recording, expired, or
        the appliance failed to give the item)."""
        attempts = self.state.record(
            site=site.name,
            destination=destination,
            data_type=data_type.value,
            item_key=key,
            status=status,
            run_id=self.run_id,
            location=None,
            error=detail if status not in (SKIPPED, NO_RECORDING) else None,
            give_up_after=MAX_ATTEMPTS if given_up_after_repeats else None,
        )
        if count:
            summary.count(destination, data_type.value, status)
            self.reporter.delivered(
                site.name, destination, data_type.value, key, status, detail, None
            )
        if given_up_after_repeats and status == FAILED and attempts >= MAX_ATTEMPTS:
            summary.give_up(
                f"{destination}: {data_type.value} {key}: {detail} (the appliance said so "
                f"{attempts} runs in a row; given up until btic retry)"
            )

    def mark_session_done(
        self,
        *,
        destination: str,
        data_type: DataType,
        site: SiteInfo,
        session: Session,
        recordings: int,
    ) -> None:
        """Record that every numbered recording of a session reached ``destination``."""
        self.state.record(
            site=site.name,
            destination=destination,
            data_type=data_type.value,
            item_key=session.lsid,
            status=DELIVERED,
            run_id=self.run_id,
            location=f"{recordings} recording(s)",
            item_time=session.end_time,
        )

    def index(self, site: SiteInfo, session: Session) -> None:
        """Keep the session's summary for ``btic find`` (once a session is read, whatever
        its deliveries come to: its items' rows say that)."""
        self.state.index_session(site.name, summarize(session))

    # -- a dry run ------------------------------------------------------------------------

    def locate(
        self, *, destination: str, data_type: DataType, site: SiteInfo, session: Session
    ) -> Placement | None:
        """Where ``destination`` would put a session report (a dry run); None when its
        plugin cannot say. Nothing is written or recorded.

        :raises DestinationError: the destination would refuse it, or its plugin
            failed to say (a bug: described with its type).
        """
        ctx = TransferContext(
            site=site,
            destination=destination,
            data_type=data_type,
            run_id=self.run_id,
            item_key=ItemKey(site.host, data_type, session.lsid),
            sealed=self.sealer.seals(destination, data_type),
            log=self.log,
        )
        try:
            placement = self.plugins.on_locate(destination, session=session, ctx=ctx)
        except DestinationError:
            raise
        except Exception as exc:
            raise DestinationError(_described(exc)) from exc
        if placement is not None and not isinstance(placement, Placement):
            raise DestinationError(
                f"its on_locate returned a {type(placement).__name__}, not a btic.Placement"
            )
        return placement


def _described(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


__all__ = [
    "DEFERRED",
    "DOWN_AFTER",
    "FLUSH_AFTER_ITEMS",
    "FLUSH_AFTER_SECONDS",
    "Deliverer",
    "Item",
    "SessionDocument",
]
