"""Report names, query windows and listing entries of the Reporting API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from btic.appliance.model import Product, ReportKind
from btic.types import DataType, RecordingKind


@dataclass(frozen=True)
class ReportNames:
    full: str
    listing: str
    recording: str


REPORT_NAMES: dict[tuple[Product, ReportKind], ReportNames] = {
    ("rs", "support"): ReportNames(
        "SupportSession", "SupportSessionListing", "SupportSessionRecording"
    ),
    ("pa", "access"): ReportNames(
        "AccessSession", "AccessSessionListing", "AccessSessionRecording"
    ),
    ("rs", "presentation"): ReportNames(
        "PresentationSession", "PresentationSessionListing", "PresentationSessionRecording"
    ),
}

#: The permission (from get_api_info) each data type needs, per product.
REQUIRED_PERMISSION: dict[Product, dict[DataType, str]] = {
    "rs": {
        DataType.SESSION: "perm_reporting_support",
        DataType.RECORDING: "perm_reporting_support",
        DataType.COMMAND_SHELL_RECORDING: "perm_reporting_support",
        DataType.SHOW_MY_SCREEN_RECORDING: "perm_reporting_support",
        DataType.PRESENTATION: "perm_reporting_presentation",
        DataType.PRESENTATION_RECORDING: "perm_reporting_presentation",
        DataType.BACKUP: "perm_backup",
    },
    "pa": {
        DataType.SESSION: "perm_reporting",
        DataType.RECORDING: "perm_reporting",
        DataType.COMMAND_SHELL_RECORDING: "perm_reporting",
        DataType.BACKUP: "perm_backup",
    },
}

#: What to tick in /login > Management > API Configuration for each permission.
PERMISSION_ADVICE = {
    "perm_reporting_support": "Reporting API: Allow Access to Support Session Reports and "
    "Recordings",
    "perm_reporting_presentation": "Reporting API: Allow Access to Presentation Session Reports "
    "and Recordings",
    "perm_reporting": "Reporting API: Allow Access to Access Session Reports and Recordings",
    "perm_backup": "Backup API: Allow Access",
    "perm_command": "Command API: Read-Only or Full Access",
}


def session_report_kind(product: Product, data_type: DataType) -> ReportKind:
    """The report a session-like data type comes from."""
    if data_type in (DataType.PRESENTATION, DataType.PRESENTATION_RECORDING):
        return "presentation"
    return "access" if product == "pa" else "support"


def recording_report(product: Product, kind: RecordingKind) -> str:
    if kind == "command_shell":
        return "CommandShellRecording"
    if kind == "show_my_screen":
        return "ShowMyScreenRecording"
    report: ReportKind = (
        "presentation" if kind == "presentation" else ("access" if product == "pa" else "support")
    )
    return REPORT_NAMES[(product, report)].recording


@dataclass(frozen=True)
class Window:
    """A time window of a report query, as the guides define them.

    ``by="end"`` asks for sessions that *ended* in the window (closed ones
    only); ``by="start"`` for sessions that started in it (in progress
    included). Both bounds are inclusive on the appliance. ``until=None``
    reaches to the appliance's present (``duration=0``).
    """

    by: Literal["start", "end"]
    since: datetime
    until: datetime | None = None

    def params(self) -> dict[str, str]:
        since = int(self.since.timestamp())
        # duration=0 means "to the present", so a closed window lasts at least one second.
        duration = 0 if self.until is None else max(1, int(self.until.timestamp()) - since)
        return {f"{self.by}_time": str(since), "duration": str(duration)}

    def describe(self) -> str:
        until = self.until.isoformat() if self.until else "now"
        return f"{self.by}_time {self.since.isoformat()} .. {until}"


@dataclass(frozen=True)
class DateWindow:
    """``start_date``/``end_date`` with ``duration`` in days (0: to the present)."""

    by: Literal["start", "end"]
    day: date
    days: int = 0

    def params(self) -> dict[str, str]:
        return {f"{self.by}_date": self.day.isoformat(), "duration": str(self.days)}

    def describe(self) -> str:
        return f"{self.by}_date {self.day.isoformat()} + {self.days or 'to now'} days"


@dataclass(frozen=True)
class RelativeWindow:
    """A window whose bounds may be "this long before the appliance's now"
    (``--since 2h``), resolved once the appliance's clock is known."""

    since: datetime | timedelta
    until: datetime | timedelta | None = None
    by: Literal["start", "end"] = "end"

    def resolve(self, appliance_now: datetime) -> Window:
        def absolute(value: datetime | timedelta) -> datetime:
            return appliance_now - value if isinstance(value, timedelta) else value

        return Window(
            self.by, absolute(self.since), None if self.until is None else absolute(self.until)
        )


@dataclass(frozen=True)
class ListingEntry:
    """One ``<session_summary>`` of a listing report."""

    lsid: str
    lseq: int | None
    has_recording: bool
    external_key: str | None


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)
