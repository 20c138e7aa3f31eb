"""The recordings of a transfer's sessions: downloaded once, handed to each
destination that lacks them, settled per session.

A session's screen recording, command shells and Show My Screen recordings are
each fetched from the appliance once, into the run's spool, and delivered to
every destination still owed it; a session leaves the run's ``pending`` for a
destination when every one of its recordings is settled there (a marker under
the lsid for the numbered kinds). Downloads take one of the site's download
slots for as long as they fetch, not while the destinations store them.
"""

from __future__ import annotations

import shutil
import threading
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from btic.appliance.client import ApplianceClient
from btic.appliance.model import Session
from btic.errors import ApplianceError, RecordingExpired, RecordingUnavailable, SpoolError
from btic.state import DELIVERED, EXPIRED, FAILED, NO_RECORDING
from btic.statuses import Transient
from btic.transfer.context import RunContext, TransferRequest
from btic.transfer.delivery import DEFERRED, Outcome
from btic.transfer.pending import Pending
from btic.transfer.summary import Summary
from btic.types import NUMBERED_DATA_TYPES, RECORDING_KINDS, DataType, Recording, SiteInfo

#: A recording's outcome when the spool could not take it: not tried against any
#: destination, so nothing is recorded and its session stays pending.
NOT_FETCHED = Transient.NOT_FETCHED

#: Recordings that come several to a session, numbered by instance.
NUMBERED_RECORDINGS = NUMBERED_DATA_TYPES


class SessionRecordings:
    """The recordings of one session run.

    :param data_types: the run's data types; the recording kinds among them are
        this object's.
    :param pending: (data type, destination) -> lsids still to settle, the
        session run's own: sessions leave it here once their recordings are in.
    """

    def __init__(
        self,
        context: RunContext,
        client: ApplianceClient | None,
        site: SiteInfo,
        request: TransferRequest,
        data_types: tuple[DataType, ...],
        summary: Summary,
        pending: Pending,
    ):
        self.context = context
        self.client = client
        self.site = site
        self.request = request
        self.summary = summary
        self.pending = pending
        self.state = context.state
        self.types = [dt for dt in data_types if dt in RECORDING_KINDS]
        # The site's download slots while recordings are fetched in a pool; None
        # while they are fetched one at a time in the caller's thread.
        self._download_slots: threading.BoundedSemaphore | None = None

    @property
    def appliance(self) -> ApplianceClient:
        return required(self.client, self.site)

    def share_downloads(self, slots: int) -> None:
        """From now on at most ``slots`` downloads run at once, whatever the number
        of threads delivering."""
        self._download_slots = threading.BoundedSemaphore(slots)

    def deliver(self, session: Session) -> None:
        """Download each recording of ``session`` some destination lacks, once, and
        hand it to each of them; a session leaves ``pending`` when all of its
        recordings are settled for a destination."""
        for data_type in self.types:
            if self.context.stop.is_set():
                return  # the session's recordings stay pending for the next run
            destinations = [
                d
                for d in self.request.destinations
                if self.pending.owes(data_type, d, session.lsid)
            ]
            if not destinations:
                continue
            links = recording_links(session, data_type)
            if not links:
                for destination in destinations:
                    self.settle_without(destination, data_type, session.lsid)
                continue
            outcomes: dict[str, list[Outcome]] = {d: [] for d in destinations}
            for report_instance, api_instance in links:
                key = recording_key(session.lsid, report_instance)
                need = (
                    destinations
                    if self.request.force
                    else [
                        d
                        for d in destinations
                        if not self.state.settled(self.site.name, d, data_type.value, [key])
                    ]
                )
                for destination in destinations:
                    if destination not in need:
                        outcomes[destination].append(DELIVERED)
                if need:
                    for destination, status in self._fetch_one(
                        session, data_type, key, report_instance, api_instance, need
                    ).items():
                        outcomes[destination].append(status)
            for destination, statuses in outcomes.items():
                if any(s in (FAILED, DEFERRED, NOT_FETCHED) for s in statuses):
                    # Not all in yet: the session stays pending, and the next run,
                    # finding each instance settled, marks it done.
                    continue
                if data_type in NUMBERED_RECORDINGS:
                    # Several per session: a marker under the lsid says the session is done.
                    self.context.deliverer.mark_session_done(
                        destination=destination,
                        data_type=data_type,
                        site=self.site,
                        session=session,
                        recordings=len(statuses),
                    )
                self.pending.settle(data_type, destination, [session.lsid])

    def settle_without(self, destination: str, data_type: DataType, lsid: str) -> None:
        """A session with no recording of this kind: settled, with nothing to fetch."""
        self.context.deliverer.mark(
            destination=destination,
            data_type=data_type,
            key=lsid,
            site=self.site,
            status=NO_RECORDING,
            detail="no recording",
            summary=self.summary,
            count=False,
        )
        self.pending.settle(data_type, destination, [lsid])

    def _fetch_one(
        self,
        session: Session,
        data_type: DataType,
        key: str,
        report_instance: int | None,
        api_instance: int | None,
        destinations: list[str],
    ) -> dict[str, Outcome]:
        """Download one recording, holding a download slot only while it downloads,
        and hand it to each of ``destinations``; the outcome for each."""
        kind = RECORDING_KINDS[data_type]
        spool: Path | None = None
        try:
            try:
                spool = self.context.spool()
                with self._download_slots or nullcontext():
                    download = self.appliance.download_recording(
                        kind,
                        session.lsid,
                        api_instance,
                        spool,
                        as_text=kind == "command_shell"
                        and self.request.command_shell_format == "txt",
                    )
            except SpoolError as exc:
                # This machine's disk, not the recording: nothing is marked against
                # the item (no attempt counted), and it stays pending.
                self.summary.problem(str(exc))
                return dict.fromkeys(destinations, NOT_FETCHED)
            except ApplianceError as exc:
                status = EXPIRED if isinstance(exc, RecordingExpired) else FAILED
                detail = str(exc)
                if isinstance(exc, RecordingUnavailable) and report_instance != api_instance:
                    # Say which numbering was assumed, so a wrong guess is never silent.
                    detail += (
                        f" (the report's instance {report_instance}, asked for as API instance "
                        f"{api_instance})"
                    )
                for destination in destinations:
                    self.context.deliverer.mark(
                        destination=destination,
                        data_type=data_type,
                        key=key,
                        site=self.site,
                        status=status,
                        detail=detail,
                        summary=self.summary,
                        # "No such recording", run after run, is the appliance's word on
                        # the item; a connection failure is not.
                        given_up_after_repeats=isinstance(exc, RecordingUnavailable),
                    )
                if status == FAILED:
                    self.summary.problem(detail)
                return dict.fromkeys(destinations, status)
            recording = Recording(
                site=self.site,
                lsid=session.lsid,
                kind=kind,
                instance=report_instance,
                extension=download.extension,
                size=download.size,
                sha256=download.sha256,
                path=download.path,
                session=session,
            )
            return {
                destination: self.context.deliverer.deliver(
                    destination=destination,
                    data_type=data_type,
                    site=self.site,
                    item=recording,
                    force=self.request.force,
                    summary=self.summary,
                    item_time=session.end_time,
                )
                for destination in destinations
            }
        finally:
            if spool is not None:
                shutil.rmtree(spool, ignore_errors=True)


def required(client: ApplianceClient | None, site: SiteInfo) -> ApplianceClient:
    """The site's client; an error naming what to give when there is none."""
    if client is None:
        raise ApplianceError(
            site.name, f"{site.name}: recordings need a configured site (give --site)"
        )
    return client


def recording_links(session: Session, data_type: DataType) -> list[tuple[int | None, int | None]]:
    """(instance as the report numbers it, instance as the API wants it) of each recording."""
    if data_type in (DataType.RECORDING, DataType.PRESENTATION_RECORDING):
        return [(None, None)] if session.session_recording_download_url else []
    links = (
        session.command_shell_recordings
        if data_type == DataType.COMMAND_SHELL_RECORDING
        else session.show_my_screen_recordings
    )
    # The API counts from 0. The RS guide says the SupportSession report numbers
    # command shells from 1 ("instance 1 in a SupportSession report should be
    # referenced as instance 0 in the API") and elsewhere from 0; appliances differ.
    # So: the download URL's own instance= when it has one, else per session: a
    # report whose first command shell is 1 numbers from 1.
    first = min((link.instance for link in links), default=0)
    shift = 1 if data_type == DataType.COMMAND_SHELL_RECORDING and first == 1 else 0
    result: list[tuple[int | None, int | None]] = []
    for link in links:
        api_instance = _url_instance(link.download_url)
        result.append(
            (link.instance, link.instance - shift if api_instance is None else api_instance)
        )
    return result


def _url_instance(url: str | None) -> int | None:
    values = parse_qs(urlsplit(url).query).get("instance") if url else None
    return int(values[0]) if values and values[0].isdigit() else None


def recording_key(lsid: str, report_instance: int | None) -> str:
    """The ledger key of a recording: the lsid, and ``#instance`` for numbered ones."""
    return lsid if report_instance is None else f"{lsid}#{report_instance}"
