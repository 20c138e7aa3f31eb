"""Streaming, hardened parsing of the appliance's XML.

* Reports are parsed with ``lxml.etree.iterparse`` one ``<session>`` at a
  time; each element is cleared once handled, so memory follows the largest
  session, not the report.
* Element names are matched by local name: the namespace differs by product
  and age (bomgar.com, beyondtrust.com, none).
* Entity expansion, DTD loading and network access are off, and a document
  that declares a DTD at all is refused before parsing: the appliance never
  sends one, so one is either corruption or an attack (XXE, billion laughs).
* An ``<error>`` that means "nothing matches" becomes an empty result; any
  other ``<error>`` raises :class:`btic.errors.ReportError` with its text.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from lxml import etree

from btic.appliance.model import (
    CustomAttribute,
    Customer,
    CustomerInfo,
    Entity,
    Event,
    EventValue,
    ExitSurvey,
    JumpGroup,
    NamedRef,
    PrimaryParty,
    Product,
    RecordingLink,
    ReportKind,
    Representative,
    Session,
    SurveyQuestion,
    SystemInfoCategory,
    Team,
    TransferredFile,
)
from btic.appliance.reports import ListingEntry
from btic.errors import ReportError

#: "No matching data" as appliances word it in the languages they ship. The
#: patterns look for the shape of the sentence (a negation and "matching" or
#: "available"), not the exact words, and sites may add their own.
NO_DATA_PATTERNS = [
    r"\bno\b.*\b(matching|match)\b",  # en
    r"\bkeine\b.*\b(verfügbar|vorhanden|entsprechen|gefunden)",  # de
    r"\baucune?\b.*\b(disponible|correspond)",  # fr
    r"\bno (hay|existe)\b.*\b(coincid|disponible)",  # es
    r"\bnessun[ao]?\b.*\b(disponibil|corrispond)",  # it
    r"\bgeen\b.*\b(beschikbaar|overeenkom)",  # nl
    r"\bnenhuma?\b.*\b(disponível|correspond)",  # pt
    r"\bingen\b.*\b(tillgänglig|matchar|motsvarar)",  # sv
    r"\bbrak\b.*\b(dostępn|pasując|spełniaj)",  # pl
    r"\bнет\b.*\b(доступн|соответств)",  # ru
    r"\b(eşleşen|uygun)\b.*\b(yok|bulunamadı|mevcut değil)",  # tr
    r"一致する.*(ありません|存在しません|見つかりません)",  # ja
    r"(没有|沒有|无|無).*(符合|匹配|相符)",  # zh
    r"일치하는.*(없습니다|없음)",  # ko
]
EXPIRED_PATTERNS = [
    r"\bexpired\b",
    r"abgelaufen",
    r"\bexpiré",
    r"\b(caducad|expirad)",
    r"\bscadut",
    r"\bverlopen\b",
    r"期限切れ",
    r"过期|過期",
]

#: The parser settings every document gets: nothing resolved or fetched, libxml's
#: size and depth limits on, comments and processing instructions dropped.
_HARDENED: dict[str, bool] = {
    "resolve_entities": False,
    "load_dtd": False,
    "no_network": True,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_HEAD_BYTES = 64 * 1024


class ErrorClassifier:
    """Tells "nothing matches" apart from real failures.

    :param extra_no_data: further phrases (regular expressions, matched
        case-insensitively) a site's appliance uses for "no matching data",
        for languages the built-in list does not know.
    """

    def __init__(self, extra_no_data: Iterable[str] = ()):
        self._no_data = [re.compile(p, re.IGNORECASE) for p in [*NO_DATA_PATTERNS, *extra_no_data]]
        self._expired = [re.compile(p, re.IGNORECASE) for p in EXPIRED_PATTERNS]

    def is_no_data(self, message: str) -> bool:
        return any(p.search(message) for p in self._no_data)

    def is_expired(self, message: str) -> bool:
        return any(p.search(message) for p in self._expired)


DEFAULT_CLASSIFIER = ErrorClassifier()


def local(tag: object) -> str:
    """An element's name without its namespace."""
    if not isinstance(tag, str):  # comments, processing instructions
        return ""
    return tag[tag.rfind("}") + 1 :]


def refuse_dtd(head: bytes, where: str = "document") -> None:
    """Raise when the start of a document declares a DTD or entities."""
    if _DOCTYPE.search(head):
        raise _dtd_refused(where)


def _dtd_refused(where: str) -> ReportError:
    return ReportError(
        "", f"{where}: refused XML that declares a DTD or entities (never sent by appliances)"
    )


def _iterparse(
    source: Path | IO[bytes], tags: tuple[str, ...]
) -> Iterator[tuple[str, etree._Element]]:
    if isinstance(source, Path):
        with source.open("rb") as handle:
            refuse_dtd(handle.read(_HEAD_BYTES), str(source))
        stream: Path | IO[bytes] | _Rewound = source
    else:
        head = source.read(_HEAD_BYTES)
        refuse_dtd(head)
        stream = _Rewound(head, source)
    context = etree.iterparse(
        str(stream) if isinstance(stream, Path) else stream,
        events=("end",),
        tag=[f"{{*}}{t}" for t in tags] + list(tags),
        **_HARDENED,
    )
    try:
        first = True
        for _event, element in context:
            if first:
                # A DTD stands before the root element, so the parser knows of it by
                # now, wherever it stood (a byte scan of the head can be pushed past).
                first = False
                docinfo = element.getroottree().docinfo
                if docinfo.doctype or docinfo.internalDTD is not None:
                    raise _dtd_refused(str(source) if isinstance(source, Path) else "report")
            yield local(element.tag), element
    except etree.XMLSyntaxError as exc:
        raise ReportError("", f"malformed XML: {exc}") from None


class _Rewound:
    """A file object that first replays bytes already read from it."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)


def _release(element: etree._Element) -> None:
    """Free a handled element and the siblings before it."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _check_error(element: etree._Element, classifier: ErrorClassifier) -> bool:
    """For an ``<error>`` at the top of a document: True for "no data", else raise."""
    parent = element.getparent()
    if parent is not None and parent.getparent() is not None:
        return False  # an <error> deep inside a session is data, not an answer
    _no_data_or_raise(element, classifier)
    return True


def _no_data_or_raise(element: etree._Element, classifier: ErrorClassifier) -> None:
    """Return for an ``<error>`` meaning "nothing matches"; raise its text otherwise."""
    message = (element.text or "").strip()
    if not classifier.is_no_data(message):
        raise ReportError("", f"the appliance answered: {message or '(an empty error)'}")


#: Called with (lsid, reason) for a session that cannot be read.
Unreadable = Callable[[str, str], None]


def iter_sessions(
    source: Path | IO[bytes],
    *,
    product: Product,
    report: ReportKind,
    host: str,
    classifier: ErrorClassifier = DEFAULT_CLASSIFIER,
    on_unreadable: Unreadable | None = None,
) -> Iterator[tuple[Session, bytes]]:
    """Each ``<session>`` of a session report, parsed, with its standalone XML.

    :param on_unreadable: receives each session whose values cannot be read (a
        timestamp out of range, a value of the wrong type), and the rest of the
        report is read on; without it such a session raises.
    :raises ReportError: for an ``<error>`` other than "no data", for malformed
        or hostile XML, and for an unreadable session without ``on_unreadable``.
    """
    for name, element in _iterparse(source, ("session", "error")):
        if name == "error":
            if _check_error(element, classifier):
                return
            continue
        parent = element.getparent()
        if parent is not None and parent.getparent() is not None:
            continue  # a nested element that happens to be called "session"
        xml = etree.tostring(element, encoding="UTF-8", xml_declaration=True, with_tail=False)
        try:
            session = parse_session(element, product=product, report=report, host=host)
        except (ValueError, OverflowError, OSError) as exc:  # pydantic's errors are ValueErrors
            lsid = element.get("lsid", "")
            reason = f"session {lsid or '(no lsid)'} cannot be read: {_first_line(exc)}"
            _release(element)
            if on_unreadable is None:
                raise ReportError("", reason) from None
            on_unreadable(lsid, reason)
            continue
        _release(element)
        yield session, xml


def iter_listing(
    source: Path | IO[bytes], *, classifier: ErrorClassifier = DEFAULT_CLASSIFIER
) -> Iterator[ListingEntry]:
    """Each entry of a listing report: ``<session_summary>`` (support and access
    sessions) or ``<presentation_summary>`` (presentations, attributes only)."""
    for name, element in _iterparse(source, ("session_summary", "presentation_summary", "error")):
        if name == "error":
            if _check_error(element, classifier):
                return
            continue
        lseq = None
        for child in element:
            if local(child.tag) in ("lseq", "Isid", "lsid"):
                lseq = _int(child.text)
        yield ListingEntry(
            lsid=element.get("lsid", ""),
            lseq=lseq,
            has_recording=element.get("has_recording") == "1",
            external_key=element.get("external_key") or None,
        )
        _release(element)


def _parse_whole(data: bytes) -> etree._Element:
    """Parse a small document with the same protections as the streaming parser."""
    refuse_dtd(data[:_HEAD_BYTES])
    parser = etree.XMLParser(**_HARDENED)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ReportError("", f"malformed XML: {exc}") from None


def parse_document(
    data: bytes, classifier: ErrorClassifier = DEFAULT_CLASSIFIER
) -> etree._Element | None:
    """A small whole document (command API answers, error bodies).

    :return: the root, or None when it is a "no data" ``<error>``.
    :raises ReportError: for any other ``<error>`` and for hostile XML.
    """
    root = _parse_whole(data)
    if local(root.tag) == "error":
        _no_data_or_raise(root, classifier)
        return None
    return root


def error_text(data: bytes) -> str | None:
    """The text of an ``<error>`` document, or None if it is not one."""
    try:
        root = _parse_whole(data)
    except ReportError:
        return None
    if local(root.tag) != "error":
        return None
    return (root.text or "").strip()


# -- one <session> -> Session --------------------------------------------------


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    try:
        return int(value)
    except ValueError:
        return None


def _flag(value: str | None) -> bool:
    return (value or "").strip() == "1"


def _text(element: etree._Element) -> str:
    return element.text or ""


def _opt(element: etree._Element) -> str | None:
    text = element.text
    return text if text is not None and text != "" else None


def _time(element: etree._Element) -> datetime | None:
    """The element's time; None when it is empty (a session still in progress).

    :raises ValueError: for a time that is there but unreadable, so the session
        fails with the reason instead of passing for one still in progress.
    """
    stamp = _int(element.get("timestamp") or element.get("ts"))
    if stamp is not None:
        return datetime.fromtimestamp(stamp, timezone.utc)
    text = (element.text or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"<{local(element.tag)}> holds no readable time: {text[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def children(element: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    """(local name, element) of each child element; comments and processing
    instructions are left out."""
    for child in element:
        name = local(child.tag)
        if name:
            yield name, child


def _party(element: etree._Element) -> PrimaryParty:
    return PrimaryParty(
        gsnumber=_int(element.get("gsnumber")), id=_int(element.get("id")), name=_text(element)
    )


def _named(element: etree._Element) -> NamedRef:
    return NamedRef(id=_int(element.get("id")), name=_text(element))


def _recording_links(element: etree._Element) -> tuple[RecordingLink, ...]:
    links = []
    for _, item in children(element):
        fields = {name: _opt(child) for name, child in children(item)}
        links.append(
            RecordingLink(
                instance=_int(item.get("instance")) or 0,
                download_url=fields.get("download_url"),
                view_url=fields.get("view_url"),
            )
        )
    return tuple(links)


def _customer(element: etree._Element) -> Customer:
    values: dict[str, object] = {"gsnumber": _int(element.get("gsnumber"))}
    for name, child in children(element):
        if name in ("username", "public_ip", "private_ip", "hostname", "os"):
            values[name] = _opt(child)
        elif name in ("primary_cust", "rpat_support"):
            values[name] = _flag(child.text)
        elif name == "info":
            info = {n: _opt(c) for n, c in children(child) if n in CustomerInfo.model_fields}
            values["info"] = CustomerInfo(**info)
    return Customer.model_validate(values)


_REP_TEXT = {
    "username",
    "display_name",
    "public_display_name",
    "private_display_name",
    "public_ip",
    "private_ip",
    "hostname",
    "os",
}


def _representative(element: etree._Element) -> Representative:
    values: dict[str, object] = {
        "gsnumber": _int(element.get("gsnumber")),
        "id": _int(element.get("id")),
    }
    for name, child in children(element):
        if name in _REP_TEXT:
            values[name] = _opt(child)
        elif name in ("session_owner", "primary_rep", "invited"):
            values[name] = _flag(child.text)
        elif name in ("display_number", "seconds_involved"):
            values[name] = _int(child.text)
    # display_name is deprecated in favour of private_display_name; keep both filled.
    values.setdefault("private_display_name", values.get("display_name"))
    values.setdefault("display_name", values.get("private_display_name"))
    return Representative.model_validate(values)


def _survey(element: etree._Element, kind: str) -> ExitSurvey:
    questions = []
    for name, question_list in children(element):
        if name != "question_list":
            continue
        for _, question in children(question_list):
            values: dict[str, object] = {"id": _int(question.get("id"))}
            answers: list[str] = []
            for qname, child in children(question):
                if qname in ("name", "type", "label", "report_header"):
                    values[qname] = _opt(child)
                elif qname == "answer_list":
                    answers.extend(_text(answer) for _, answer in children(child))
            values["answers"] = tuple(answers)
            questions.append(SurveyQuestion.model_validate(values))
    return ExitSurvey.model_validate({"kind": kind, "questions": tuple(questions)})


def _surveys(element: etree._Element, kind: str) -> tuple[ExitSurvey, ...]:
    return tuple(_survey(child, kind) for _, child in children(element))


def _entity(element: etree._Element) -> Entity:
    return Entity(
        gsnumber=_int(element.get("gsnumber")), type=element.get("type"), name=_text(element)
    )


def _system_information(element: etree._Element) -> tuple[SystemInfoCategory, ...]:
    categories = []
    for _, category in children(element):
        fields: tuple[str, ...] = ()
        rows: list[tuple[str, ...]] = []
        for name, child in children(category):
            if name == "description":
                fields = tuple(_text(f) for _, f in children(child))
            elif name == "data":
                rows.extend(tuple(_text(f) for _, f in children(row)) for _, row in children(child))
        categories.append(
            SystemInfoCategory(name=category.get("name", ""), fields=fields, rows=tuple(rows))
        )
    return tuple(categories)


def _event(element: etree._Element) -> Event:
    values: dict[str, object] = {
        "timestamp": _time(element) or datetime.fromtimestamp(0, timezone.utc),
        "event_type": element.get("event_type", ""),
    }
    for name, child in children(element):
        if name in ("performed_by", "destination"):
            values[name] = _entity(child)
        elif name == "body":
            values["body"] = _text(child)
        elif name == "encoded_body":
            raw = (child.text or "").strip()
            try:
                values["body"] = base64.b64decode(raw, validate=False).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                values["body"] = raw
            values["body_encoded"] = True
        elif name == "filename":
            values["filename"] = _opt(child)
        elif name == "filesize":
            values["filesize"] = _int(child.text)
        elif name == "files":
            values["files"] = tuple(
                TransferredFile(name=_text(f), size=_int(f.get("size"))) for _, f in children(child)
            )
        elif name == "data":
            values["data"] = tuple(
                EventValue(name=v.get("name", ""), value=v.get("value", ""))
                for _, v in children(child)
            )
        elif name == "system_information":
            values["system_information"] = _system_information(child)
    return Event.model_validate(values)


_SESSION_TEXT = {
    "session_type",
    "duration",
    "external_key",
    "session_chat_view_url",
    "session_chat_download_url",
    "session_recording_view_url",
    "session_recording_download_url",
}
_SESSION_INT = {"lseq", "file_transfer_count", "file_move_count", "file_delete_count"}


def parse_session(
    element: etree._Element, *, product: Product, report: ReportKind, host: str
) -> Session:
    """Build a :class:`Session` from one ``<session>`` element."""
    values: dict[str, object] = {
        "product": product,
        "report": report,
        "host": host,
        "lsid": element.get("lsid", ""),
    }
    for name, child in children(element):
        if name in _SESSION_TEXT:
            values[name] = _opt(child)
        elif name in _SESSION_INT:
            values[name] = _int(child.text)
        elif name in ("start_time", "end_time"):
            values[name] = _time(child)
        elif name in ("public_site", "jumpoint", "primary_team"):
            values[name] = _named(child)
        elif name == "jump_group":
            values[name] = JumpGroup(
                id=_int(child.get("id")), type=child.get("type"), name=_text(child)
            )
        elif name in ("primary_customer", "primary_rep"):
            values[name] = _party(child)
        elif name == "custom_attributes":
            values[name] = tuple(
                CustomAttribute(
                    code_name=a.get("code_name", ""),
                    display_name=a.get("display_name", ""),
                    value=_text(a),
                )
                for _, a in children(child)
            )
        elif name == "show_my_screen_recordings" or name == "command_shell_recordings":
            values[name] = _recording_links(child)
        elif name in ("customer_list", "attendee_list"):
            values["customers"] = tuple(_customer(c) for _, c in children(child))
        elif name == "rep_list":
            values["representatives"] = tuple(_representative(r) for _, r in children(child))
        elif name == "team_list":
            values["teams"] = tuple(
                Team(id=_int(t.get("id")), name=_text(t), primary_team=_flag(t.get("primary_team")))
                for _, t in children(child)
            )
        elif name == "cust_survey_list":
            values["customer_surveys"] = _surveys(child, "customer")
        elif name == "rep_survey_list":
            values["rep_surveys"] = _surveys(child, "representative")
        elif name == "session_details":
            values["events"] = tuple(_event(e) for _, e in children(child))
    if values.get("session_type") is None:
        values["session_type"] = "presentation" if report == "presentation" else "support"
    return Session.model_validate(values)
