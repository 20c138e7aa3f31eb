"""The typed session report, as the API guides describe ``/session_list/session``.

One :class:`Session` covers RS support sessions (``SupportSession``), PA access
sessions (``AccessSession``) and RS presentations (``PresentationSession``).
Every column of the Integration Client's SQL tables (session, session_event,
session_event_data, system_information, representative/user, customer/endpoint,
team, custom_attribute) can be filled from it.

Elements the appliance leaves out are ``None`` (or empty lists), never guessed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    WrapSerializer,
    WrapValidator,
)

Product = Literal["rs", "pa"]
#: How a message names each product.
PRODUCT_NAMES: dict[str, str] = {"rs": "Remote Support (rs)", "pa": "Privileged Access (pa)"}
#: Which report the session came from.
ReportKind = Literal["support", "access", "presentation"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Entity(_Model):
    """``<performed_by>`` / ``<destination>`` of an event: who acted, or on whom.

    :ivar gsnumber: correlates with a customer, representative or attendee.
    :ivar type: ``system``, ``customer``, ``representative`` (PA: ``endpoint``,
        ``user``; presentations: ``attendee``), as the appliance sends it.
    :ivar name: the element's text.
    """

    gsnumber: int | None = None
    type: str | None = None
    name: str = ""


class EventValue(_Model):
    """One ``<data><value name=".." value=".."/></data>`` pair of an event."""

    name: str
    value: str


class TransferredFile(_Model):
    """One ``<files><file>`` of a file-transfer event."""

    name: str
    size: int | None = None


class SystemInfoCategory(_Model):
    """One ``<system_information><category>``: a small table.

    :ivar name: the category's ``name`` attribute (General, Memory, Drives...).
    :ivar fields: the ``<description><field>`` headers.
    :ivar rows: each ``<data><row>`` as its ``<field>`` cells.
    """

    name: str
    fields: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


class Event(_Model):
    """One ``<session_details><event>``.

    :ivar body: chat text; when the appliance sent ``<encoded_body>`` (text
        with characters XML cannot carry) this is the decoded text.
    :ivar body_encoded: True when ``body`` came from ``<encoded_body>``.
    """

    timestamp: datetime
    event_type: str
    performed_by: Entity | None = None
    destination: Entity | None = None
    body: str | None = None
    body_encoded: bool = False
    filename: str | None = None
    filesize: int | None = None
    files: tuple[TransferredFile, ...] = ()
    data: tuple[EventValue, ...] = ()
    system_information: tuple[SystemInfoCategory, ...] = ()


class LazyEvents(Sequence[Event]):
    """A session's events, built on first use by ``build`` (from the session's own
    XML): a destination that stores the XML as it is never pays for them.

    Reads like the tuple it becomes; equal to any sequence of the same events.
    Building raises ``ValueError`` (naming the event) when an event cannot be read.
    """

    __slots__ = ("_build", "_events", "_lock")

    def __init__(self, build: Callable[[], tuple[Event, ...]]):
        self._build: Callable[[], tuple[Event, ...]] | None = build
        self._events: tuple[Event, ...] | None = None
        self._lock = threading.Lock()

    def built(self) -> tuple[Event, ...]:
        """The events, built now if they were not."""
        if self._events is None:
            with self._lock:
                if self._events is None:
                    assert self._build is not None
                    self._events = self._build()
                    self._build = None  # and what it held (the XML) with it
        return self._events

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Event, ...]: ...
    def __getitem__(self, index: int | slice) -> Event | tuple[Event, ...]:
        return self.built()[index]

    def __len__(self) -> int:
        return len(self.built())

    def __iter__(self) -> Iterator[Event]:
        return iter(self.built())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return self.built() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.built())

    def __repr__(self) -> str:
        return repr(self.built()) if self._events is not None else "LazyEvents(not built)"


def _events_as_given(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return value if isinstance(value, LazyEvents) else handler(value)


def _events_as_tuple(value: Any, handler: SerializerFunctionWrapHandler) -> Any:
    return handler(tuple(value))


#: ``Session.events``: a tuple of :class:`Event`, or :class:`LazyEvents` as they are.
Events = Annotated[
    tuple[Event, ...],
    WrapValidator(_events_as_given),
    WrapSerializer(_events_as_tuple),
]


class CustomerInfo(_Model):
    """``<customer><info>``: the front-end survey."""

    name: str | None = None
    company: str | None = None
    company_code: str | None = None
    issue: str | None = None
    details: str | None = None


class Customer(_Model):
    """A customer (RS), an endpoint (PA) or a presentation attendee."""

    gsnumber: int | None = None
    username: str | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    hostname: str | None = None
    os: str | None = None
    primary_cust: bool = False
    #: The IC's customer.rpat_support column; older appliances send it, others mean 0.
    rpat_support: bool = False
    info: CustomerInfo | None = None


class Representative(_Model):
    """A representative (RS), a user (PA) or a presenter.

    ``display_name`` is the deprecated element; ``private_display_name`` holds
    the same value on current appliances (the parser fills one from the other).
    """

    gsnumber: int | None = None
    id: int | None = None
    username: str | None = None
    display_name: str | None = None
    public_display_name: str | None = None
    private_display_name: str | None = None
    display_number: int | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    hostname: str | None = None
    os: str | None = None
    session_owner: bool = False
    primary_rep: bool = False
    seconds_involved: int | None = None
    invited: bool = False


class Team(_Model):
    """A ``<team_list><team>``."""

    id: int | None = None
    name: str = ""
    primary_team: bool = False


class CustomAttribute(_Model):
    code_name: str
    display_name: str
    value: str = ""


class RecordingLink(_Model):
    """A ``<command_shell_recording>`` or ``<show_my_screen_recording>``.

    :ivar instance: as the report numbers it (the API's ``instance`` parameter
        for the download; see :attr:`Session.command_shell_recordings`).
    """

    instance: int
    download_url: str | None = None
    view_url: str | None = None


class NamedRef(_Model):
    """An element with an ``id`` attribute and a name as text (public site,
    jumpoint, primary team)."""

    id: int | None = None
    name: str = ""


class JumpGroup(_Model):
    """PA ``<jump_group type="shared" id="1">name</jump_group>``."""

    id: int | None = None
    type: str | None = None
    name: str = ""


class PrimaryParty(_Model):
    """``<primary_customer>`` / ``<primary_rep>``: gsnumber, id and name."""

    gsnumber: int | None = None
    id: int | None = None
    name: str = ""


class SurveyQuestion(_Model):
    id: int | None = None
    name: str | None = None
    type: str | None = None
    label: str | None = None
    report_header: str | None = None
    answers: tuple[str, ...] = ()


class ExitSurvey(_Model):
    """A ``<cust_exit_survey>`` or ``<rep_exit_survey>``."""

    kind: Literal["customer", "representative"]
    questions: tuple[SurveyQuestion, ...] = ()


class Session(_Model):
    """One session report: a support session (RS), an access session (PA) or
    a presentation (RS).

    :ivar product: the appliance's product, ``rs`` or ``pa``.
    :ivar report: which report it came from: ``support``, ``access`` or
        ``presentation``.
    :ivar host: the appliance host the report was fetched from
        (``%SUPPORT_SITE_HOST%``, the SQL ``host_name``).
    :ivar lsid: the session's unique id.
    :ivar session_type: ``<session_type>``: ``support`` (RS and PA) or
        ``presentation``.
    :ivar end_time: None while the session is in progress or when it closed
        abnormally.
    :ivar duration: ``HH:MM:SS`` as the appliance reports it.
    :ivar customers: ``<customer_list>`` (RS customers, PA endpoints) or, for
        presentations, ``<attendee_list>``.
    :ivar command_shell_recordings: instances as the report numbers them.
    :ivar unconverted: values btic could not convert to their type (a
        ``gsnumber`` that is not a number), each as ``<element attribute>='text'``;
        their fields are None, and the session's XML keeps them as they came.
    """

    product: Product
    report: ReportKind
    host: str
    lsid: str
    session_type: str = "support"
    lseq: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: str | None = None
    public_site: NamedRef | None = None
    jumpoint: NamedRef | None = None
    jump_group: JumpGroup | None = None
    external_key: str | None = None
    custom_attributes: tuple[CustomAttribute, ...] = ()
    session_chat_view_url: str | None = None
    session_chat_download_url: str | None = None
    session_recording_view_url: str | None = None
    session_recording_download_url: str | None = None
    show_my_screen_recordings: tuple[RecordingLink, ...] = ()
    command_shell_recordings: tuple[RecordingLink, ...] = ()
    file_transfer_count: int | None = None
    file_move_count: int | None = None
    file_delete_count: int | None = None
    primary_customer: PrimaryParty | None = None
    primary_rep: PrimaryParty | None = None
    primary_team: NamedRef | None = None
    customers: tuple[Customer, ...] = ()
    representatives: tuple[Representative, ...] = ()
    teams: tuple[Team, ...] = ()
    customer_surveys: tuple[ExitSurvey, ...] = ()
    rep_surveys: tuple[ExitSurvey, ...] = ()
    #: built on first use when the session came from a report (see LazyEvents)
    events: Events = ()
    unconverted: tuple[str, ...] = ()

    @property
    def has_recording(self) -> bool:
        return self.session_recording_download_url is not None

    @property
    def is_closed(self) -> bool:
        return self.end_time is not None
