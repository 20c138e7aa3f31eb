"""A session run: one (site, report kind) pass of a transfer.

Sessions come in two ways and leave by one: :meth:`SessionRun.execute` lists
a window (or given lsids) on the appliance and fetches the reports the ledger
lacks; :meth:`SessionRun.feed` takes one session whose report came from
elsewhere (``btic import-xml``). Either way each session is delivered to the
destinations that lack it, then its recordings are downloaded once and
delivered, and (for an incremental run) each destination's watermark moves
only over what it has settled.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from btic.appliance.client import ApplianceClient
from btic.appliance.model import ReportKind, Session
from btic.appliance.reports import DateWindow, ListingEntry, RelativeWindow, Window
from btic.config import parse_duration
from btic.errors import (
    ApplianceError,
    DestinationError,
    MalformedReport,
    ReportTooLarge,
    SpoolError,
)
from btic.state import FAILED
from btic.transfer.context import RunContext, TransferRequest
from btic.transfer.delivery import DEFERRED, SessionDocument
from btic.transfer.pending import Pending
from btic.transfer.recordings import (
    SessionRecordings,
    recording_key,
    recording_links,
    required,
)
from btic.transfer.summary import Summary
from btic.types import DataType, SiteInfo

LSIDS_PER_REQUEST = 50
SESSION_TYPES = (DataType.SESSION, DataType.PRESENTATION)


class SessionRun:
    """Sessions of one report kind, and their recordings, for one transfer.

    :param client: the site's appliance client; None when nothing needs the
        appliance (sessions fed from files, no recordings asked for).
    :param appliance_now: the appliance's clock when the transfer began.
    """

    def __init__(
        self,
        context: RunContext,
        client: ApplianceClient | None,
        site: SiteInfo,
        request: TransferRequest,
        report: ReportKind,
        data_types: tuple[DataType, ...],
        appliance_now: datetime,
        summary: Summary,
    ):
        self.context = context
        self.client = client
        self.site = site
        self.request = request
        self.report = report
        self.data_types = data_types
        self.appliance_now = appliance_now
        self.summary = summary
        self.state = context.state
        #: (data type, destination) -> lsids still to settle
        self.pending = Pending()
        #: lsid -> end time, for the sessions fetched
        self.end_times: dict[str, datetime] = {}
        self.clock_went_back = False
        #: lsids whose report could not be read this run
        self.unreadable: set[str] = set()
        #: (data type, destination, lsid) of reports a batching destination holds unflushed
        self.deferred: set[tuple[DataType, str, str]] = set()
        self.settings = context.config.sites.get(site.name)
        self.recordings = SessionRecordings(
            context, client, site, request, data_types, summary, self.pending
        )

    @property
    def appliance(self) -> ApplianceClient:
        return required(self.client, self.site)

    # -- the two ways in ------------------------------------------------------------------

    def execute(self) -> None:
        """List the request's sessions on the appliance and deliver what is owed."""
        assert self.settings is not None, "a listed transfer is always of a configured site"
        until = self.appliance_now - self.settings.settle_delay
        entries = self._select(until)
        listed = [e.lsid for e in entries]
        for data_type in self.data_types:
            for destination in self.request.destinations:
                owed = self._owed(destination, data_type, listed)
                self.pending.owe(data_type, destination, owed)
                self.summary.already(destination, data_type.value, len(set(listed) - owed))
        needed = [lsid for lsid in listed if self.pending.owed_anywhere(lsid)]
        if self.request.dry_run:
            self._plan(needed)
            return
        self._mark_sessions_without_recording(entries)
        fetched_ok = self._fetch_and_deliver(needed)
        self._flush()
        if self.request.incremental:
            self._advance_watermarks(until, fetched_ok)

    def feed(self, sessions: list[tuple[Session, bytes]]) -> None:
        """Deliver closed sessions whose reports came from elsewhere, each followed
        by its recordings (downloaded in this thread)."""
        lsids = [session.lsid for session, _ in sessions]
        for data_type in self.data_types:
            for destination in self.request.destinations:
                owed = self._owed(destination, data_type, lsids)
                self.pending.owe(data_type, destination, owed)
                self.summary.already(destination, data_type.value, len(set(lsids) - owed))
        for session, xml in sessions:
            self._deliver_session(session, xml)
            if self.recordings.types and session.is_closed:
                self.recordings.deliver(session)

    def _owed(self, destination: str, data_type: DataType, lsids: list[str]) -> set[str]:
        """The lsids the ledger has not settled for this destination (all of them with --force)."""
        if self.request.force:
            return set(lsids)
        settled = self.state.settled(self.site.name, destination, data_type.value, lsids)
        return {lsid for lsid in lsids if lsid not in settled}

    # -- selecting ----------------------------------------------------------------------

    def _select(self, until: datetime) -> list[ListingEntry]:
        if self.request.lsids:
            return [ListingEntry(lsid, None, True, None) for lsid in self.request.lsids]
        window: Window | DateWindow
        if self.request.incremental:
            window = Window("end", self._since(), until)
        else:
            requested = self.request.window
            if requested is None:
                raise ValueError("a manual transfer needs a window or lsids")
            window = (
                requested.resolve(self.appliance_now)
                if isinstance(requested, RelativeWindow)
                else requested
            )
        return self.appliance.list_sessions(self.report, window)

    def _since(self) -> datetime:
        assert self.settings is not None
        entries = [
            self.state.watermark_entry(self.site.name, dt.value, d)
            for dt in self.data_types
            for d in self.request.destinations
        ]
        marks = [entry for entry in entries if entry is not None]
        if marks and len(marks) == len(entries):
            since = min(position for position, _ in marks) - self.settings.overlap
            if max(position for position, _ in marks) > self.appliance_now:
                # The appliance's clock was set back since the last run: sessions that ended
                # since then carry times before the watermark. Reach back as far as real
                # time has passed since (this machine's clock, used only as a stopwatch).
                self.clock_went_back = True
                elapsed = datetime.now(timezone.utc) - min(updated for _, updated in marks)
                since = min(
                    since, self.appliance_now - max(elapsed, timedelta(0)) - self.settings.overlap
                )
            return since
        if self.settings.first_run_since == "all":
            return datetime(1970, 1, 2, tzinfo=timezone.utc)
        return self.appliance_now - parse_duration(self.settings.first_run_since)

    def _mark_sessions_without_recording(self, entries: list[ListingEntry]) -> None:
        """The listing says which sessions have no screen recording: nothing to fetch for those."""
        for data_type in (DataType.RECORDING, DataType.PRESENTATION_RECORDING):
            if data_type not in self.data_types:
                continue
            for entry in entries:
                if entry.has_recording:
                    continue
                for destination in self.request.destinations:
                    if self.pending.owes(data_type, destination, entry.lsid):
                        self.recordings.settle_without(destination, data_type, entry.lsid)

    # -- sessions -----------------------------------------------------------------------

    def _fetch_and_deliver(self, lsids: list[str]) -> bool:
        """Fetch reports in batches and deliver; False if a batch could not be fetched."""
        assert self.settings is not None
        all_fetched = True
        downloads = self.context.concurrency or self.settings.download_concurrency
        self.recordings.share_downloads(downloads)
        # Twice the threads of the download slots: a thread handing a downloaded
        # recording to the destinations (fsync, placement, the ledger) has given its
        # slot back, so the connection's next download does not wait for the disk.
        workers = 2 * downloads
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="btic-download") as pool:
            # Bounded hand-off: memory stays flat however many sessions a report holds.
            slots = threading.BoundedSemaphore(workers * 2)
            futures: list[Future[None]] = []
            limit = self.settings.max_session_megabytes * 1024 * 1024
            batches = deque(
                lsids[start : start + LSIDS_PER_REQUEST]
                for start in range(0, len(lsids), LSIDS_PER_REQUEST)
            )
            while batches:
                if self.context.stop.is_set():
                    all_fetched = False  # what was not reached stays before the watermark
                    break
                batch = batches.popleft()
                answered: set[str] = set()
                try:
                    for session, xml in self.appliance.iter_sessions(
                        self.report, lsids=batch, on_unreadable=self._unreadable, max_bytes=limit
                    ):
                        answered.add(session.lsid)
                        if self.context.stop.is_set():
                            all_fetched = False
                            break
                        if session.end_time is None:
                            self._in_progress(session)
                            continue
                        self.end_times[session.lsid] = session.end_time
                        self._deliver_session(session, xml)
                        if self.recordings.types:
                            slots.acquire()
                            future = pool.submit(self.recordings.deliver, session)
                            future.add_done_callback(lambda _f: slots.release())
                            futures.append(future)
                        futures = [f for f in futures if not f.done() or f.exception() is not None]
                except (ReportTooLarge, MalformedReport) as exc:
                    # A property of one session's report, not of the batch: split what
                    # was not read until the session that causes it stands alone.
                    left = [s for s in batch if s not in answered and s not in self.unreadable]
                    if len(left) > 1:
                        half = len(left) // 2
                        batches.extendleft([left[half:], left[:half]])
                    elif left:
                        self._unreadable(left[0], self._why_unreadable(left[0], exc))
                    continue
                except (ApplianceError, SpoolError) as exc:
                    self.summary.problem(str(exc))
                    all_fetched = False
                    continue
                if self.context.stop.is_set():
                    break
                for lsid in batch:
                    if lsid not in answered and lsid not in self.unreadable:
                        # Report lag, or an appliance that lost it: never settle it unseen.
                        self.summary.problem(
                            f"site {self.site.name}: session {lsid} was listed but its full "
                            f"{self.report} report does not hold it; it stays pending and is "
                            "asked for again on the next run"
                        )
            for future in futures:
                exception = future.exception()
                if exception is not None:
                    self.summary.problem(
                        f"site {self.site.name}: {type(exception).__name__}: {exception}"
                    )
        return all_fetched

    # -- a dry run ----------------------------------------------------------------------

    def _plan(self, lsids: list[str]) -> None:
        """What a real run would deliver, and where: the reports are read as a real run
        reads them (so in-progress, unreadable and unknown sessions show up the same
        way), and nothing is downloaded, written or recorded."""
        assert self.settings is not None
        limit = self.settings.max_session_megabytes * 1024 * 1024
        answered: set[str] = set()

        def unreadable(lsid: str, reason: str) -> None:
            answered.add(lsid)
            self.summary.problem(f"site {self.site.name}: {reason}")

        for start in range(0, len(lsids), LSIDS_PER_REQUEST):
            batch = lsids[start : start + LSIDS_PER_REQUEST]
            try:
                for session, _xml in self.appliance.iter_sessions(
                    self.report, lsids=batch, on_unreadable=unreadable, max_bytes=limit
                ):
                    answered.add(session.lsid)
                    if session.end_time is None:
                        self._in_progress(session)
                    else:
                        self._plan_session(session)
            except (ReportTooLarge, MalformedReport):
                for lsid in batch:
                    if lsid not in answered:
                        answered.add(lsid)
                        self._plan_unlocated(lsid)
                self.summary.note(
                    f"site {self.site.name}: some reports are too large or malformed to read "
                    "in a dry run; they are listed without where they would go"
                )
        for lsid in lsids:
            if lsid not in answered:
                self.summary.problem(
                    f"site {self.site.name}: session {lsid} was listed but its full "
                    f"{self.report} report does not hold it; a real run would leave it pending"
                )

    def _plan_session(self, session: Session) -> None:
        for data_type, destination in self.pending.pairs_owed(session.lsid):
            if data_type in SESSION_TYPES:
                try:
                    where = self.context.deliverer.locate(
                        destination=destination,
                        data_type=data_type,
                        site=self.site,
                        session=session,
                    )
                except DestinationError as exc:
                    item = f"{session.lsid} -> cannot tell: {exc}"
                else:
                    item = f"{session.lsid} -> {where}" if where else session.lsid
                self.summary.plan(destination, data_type.value, [item])
            else:
                links = recording_links(session, data_type)
                keys = [recording_key(session.lsid, instance) for instance, _ in links]
                self.summary.plan(destination, data_type.value, keys)

    def _plan_unlocated(self, lsid: str) -> None:
        for data_type, destination in self.pending.pairs_owed(lsid):
            self.summary.plan(destination, data_type.value, [lsid])

    def _unreadable(self, lsid: str, reason: str) -> None:
        """A session whose report btic cannot read: failed, with the reason, for every
        destination that lacks it; the rest of the report goes on, and the watermark
        stays before it."""
        self.unreadable.add(lsid)
        for data_type in self.data_types:
            for destination in self.request.destinations:
                if self.pending.owes(data_type, destination, lsid):
                    self.context.deliverer.mark(
                        destination=destination,
                        data_type=data_type,
                        key=lsid,
                        site=self.site,
                        status=FAILED,
                        detail=reason,
                        summary=self.summary,
                    )
        self.summary.problem(f"site {self.site.name}: {reason}")

    def _why_unreadable(self, lsid: str, exc: ReportTooLarge | MalformedReport) -> str:
        """Why the report of ``lsid``, fetched alone, cannot be read."""
        if isinstance(exc, ReportTooLarge):
            assert self.settings is not None
            return (
                f"session {lsid}'s report is over {self.settings.max_session_megabytes} MB "
                f"(sites.{self.site.name}.max_session_megabytes); not parsed"
            )
        detail = str(exc).rsplit(": malformed XML: ", 1)[-1]
        return (
            f"session {lsid}'s report is not well-formed XML ({detail}); not delivered, "
            "and asked for again on the next run"
        )

    def _in_progress(self, session: Session) -> None:
        # Its report is not final and its recordings do not exist yet: delivering it
        # now would settle it in the ledger with an incomplete report.
        self.summary.note(
            f"session {session.lsid} is still in progress; it is transferred once it "
            "has ended (a sync picks it up then)"
        )

    def _deliver_session(self, session: Session, xml: bytes) -> None:
        if session.unconverted:
            self.summary.note(
                f"site {self.site.name}: session {session.lsid}: "
                f"{', '.join(session.unconverted)} could not be converted; kept as text in "
                "the session's XML, empty in its fields"
            )
        document = SessionDocument(session, xml)
        self.context.deliverer.index(self.site, session)
        for data_type in self.data_types:
            if data_type not in SESSION_TYPES:
                continue
            for destination in self.request.destinations:
                if self.pending.owes(data_type, destination, session.lsid):
                    status = self.context.deliverer.deliver(
                        destination=destination,
                        data_type=data_type,
                        site=self.site,
                        item=document,
                        force=self.request.force,
                        summary=self.summary,
                        item_time=session.end_time,
                    )
                    if status == DEFERRED:
                        self.deferred.add((data_type, destination, session.lsid))
                    elif status != FAILED:
                        self.pending.settle(data_type, destination, [session.lsid])

    def _flush(self) -> None:
        """Make the batches of this pass durable; the reports the ledger now has are
        no longer pending (the watermark may pass them)."""
        if not self.deferred:
            return
        self.context.deliverer.flush()
        held: dict[tuple[DataType, str], list[str]] = {}
        for data_type, destination, lsid in self.deferred:
            held.setdefault((data_type, destination), []).append(lsid)
        for (data_type, destination), lsids in held.items():
            settled = self.state.settled(
                self.site.name, destination, data_type.value, lsids, include_given_up=False
            )
            self.pending.settle(data_type, destination, settled)
        self.deferred.clear()

    # -- watermarks ---------------------------------------------------------------------

    def _advance_watermarks(self, until: datetime, fetched_ok: bool) -> None:
        for (data_type, destination), left in self.pending.left().items():
            if not left:
                position = until
            elif fetched_ok and all(lsid in self.end_times for lsid in left):
                # Stop just before the earliest session still owed to this destination.
                position = min(self.end_times[lsid] for lsid in left) - timedelta(seconds=1)
            else:
                continue
            self.state.advance_watermark(
                self.site.name,
                data_type.value,
                destination,
                position,
                allow_back=self.clock_went_back,
            )
