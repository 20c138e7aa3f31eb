"""The typed session report, as the API guides describe ``/session_list/session``.

One :class:`Session` covers RS support sessions (``SupportSession``), PA access
sessions (``AccessSession``) and RS presentations (``PresentationSession``).
Every column of the Integration Client's SQL tables (session, session_event,
session_event_data, system_information, representative/user, customer/endpoint,
team, custom_attribute) can be filled from it.

Elements the appliance leaves out are ``None`` (or empty lists), never guessed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

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
    events: tuple[Event, ...] = ()
    unconverted: tuple[str, ...] = ()

    @property
    def has_recording(self) -> bool:
        return self.session_recording_download_url is not None

    @property
    def is_closed(self) -> bool:
        return self.end_time is not None
