"""One ``<session>`` element of a session report -> :class:`Session`.

Every session of every report passes through here, so the code is written for
speed: each element's children are walked once with the local name looked up
in :data:`~btic.appliance.xmlnames.LOCAL_NAMES`, the whole session is gathered
as plain values, and pydantic validates it in one call (its validator builds
every nested model), instead of one validation per event, customer and entity.
The values are still validated: a model of the wrong shape fails the session.

Every child is taken to be an element: the hardened parser (:mod:`.parse`)
drops comments and processing instructions and refuses DTDs, so there are no
entity references either.
"""

from __future__ import annotations

import base64
import binascii
import functools
from datetime import datetime, timezone
from typing import Any

from lxml import etree
from pydantic import TypeAdapter, ValidationError

from btic.appliance.model import (
    CustomerInfo,
    Entity,
    Event,
    LazyEvents,
    Product,
    ReportKind,
    Session,
)
from btic.appliance.xmlnames import LOCAL_NAMES, local

Values = dict[str, Any]


def int_or_none(value: str | None) -> int | None:
    """An integer's text as an int; None when absent or not a number."""
    if value is None:
        return None
    try:
        return int(value)  # int() itself ignores surrounding whitespace
    except ValueError:
        return None


#: What a session's parse could not convert: ``<element attribute>='text'`` each.
Unconverted = list[str]


def _int(value: str | None, unconverted: Unconverted, where: str) -> int | None:
    """An integer's text as an int; None when absent. Text that is not a number is
    None too, and said in ``unconverted``: the archived XML keeps it as it came."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        if value.strip():
            unconverted.append(f"{where}={value[:40]!r}")
        return None


def _flag(value: str | None) -> bool:
    return (value or "").strip() == "1"


def _opt(element: etree._Element) -> str | None:
    text = element.text
    return text if text is not None and text != "" else None


def _time(element: etree._Element) -> datetime | None:
    """The element's time; None when it is empty (a session still in progress).

    :raises ValueError: for a time that is there but unreadable, so the session
        fails with the reason instead of passing for one still in progress.
    """
    raw = element.get("timestamp") or element.get("ts")
    stamp = int_or_none(raw)
    if stamp is not None:
        return datetime.fromtimestamp(stamp, timezone.utc)
    text = (element.text or "").strip()
    if not text:
        if raw is not None and raw.strip():
            raise ValueError(f"<{local(element.tag)}> holds no readable time: {raw[:40]!r}")
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"<{local(element.tag)}> holds no readable time: {text[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _named_children(element: etree._Element) -> list[tuple[str, etree._Element]]:
    """(local name, child) of each child; comments and the like get "", which no
    caller asks for."""
    names = LOCAL_NAMES
    return [(names.get(child.tag) or local(child.tag), child) for child in element]


def _texts(element: etree._Element) -> tuple[str, ...]:
    """The text of each child (``<field>`` cells, answers)."""
    return tuple([child.text or "" for child in element])


def _party(element: etree._Element, unconverted: Unconverted) -> Values:
    tag = local(element.tag)
    return {
        "gsnumber": _int(element.get("gsnumber"), unconverted, f"<{tag} gsnumber>"),
        "id": _int(element.get("id"), unconverted, f"<{tag} id>"),
        "name": element.text or "",
    }


def _named(element: etree._Element, unconverted: Unconverted) -> Values:
    tag = local(element.tag)
    return {"id": _int(element.get("id"), unconverted, f"<{tag} id>"), "name": element.text or ""}


def _recording_links(element: etree._Element, unconverted: Unconverted) -> list[Values]:
    links = []
    for name, item in _named_children(element):
        if not name:
            continue
        fields = {field: _opt(child) for field, child in _named_children(item) if field}
        links.append(
            {
                "instance": _int(item.get("instance"), unconverted, f"<{name} instance>") or 0,
                "download_url": fields.get("download_url"),
                "view_url": fields.get("view_url"),
            }
        )
    return links


_CUSTOMER_TEXT = frozenset({"username", "public_ip", "private_ip", "hostname", "os"})


def _customer(element: etree._Element, unconverted: Unconverted) -> Values:
    values: Values = {
        "gsnumber": _int(element.get("gsnumber"), unconverted, f"<{local(element.tag)} gsnumber>")
    }
    for name, child in _named_children(element):
        if name in _CUSTOMER_TEXT:
            values[name] = _opt(child)
        elif name == "primary_cust" or name == "rpat_support":
            values[name] = _flag(child.text)
        elif name == "info":
            values["info"] = {
                n: _opt(c) for n, c in _named_children(child) if n in CustomerInfo.model_fields
            }
    return values


_REP_TEXT = frozenset(
    {
        "username",
        "display_name",
        "public_display_name",
        "private_display_name",
        "public_ip",
        "private_ip",
        "hostname",
        "os",
    }
)
_REP_FLAG = frozenset({"session_owner", "primary_rep", "invited"})


def _representative(element: etree._Element, unconverted: Unconverted) -> Values:
    tag = local(element.tag)
    values: Values = {
        "gsnumber": _int(element.get("gsnumber"), unconverted, f"<{tag} gsnumber>"),
        "id": _int(element.get("id"), unconverted, f"<{tag} id>"),
    }
    for name, child in _named_children(element):
        if name in _REP_TEXT:
            values[name] = _opt(child)
        elif name in _REP_FLAG:
            values[name] = _flag(child.text)
        elif name == "display_number" or name == "seconds_involved":
            values[name] = _int(child.text, unconverted, f"<{name}>")
    # display_name is deprecated in favour of private_display_name; keep both filled.
    values.setdefault("private_display_name", values.get("display_name"))
    values.setdefault("display_name", values.get("private_display_name"))
    return values


_QUESTION_TEXT = frozenset({"name", "type", "label", "report_header"})


def _survey(element: etree._Element, kind: str, unconverted: Unconverted) -> Values:
    questions = []
    for name, question_list in _named_children(element):
        if name != "question_list":
            continue
        for qname, question in _named_children(question_list):
            if not qname:
                continue
            values: Values = {"id": _int(question.get("id"), unconverted, f"<{qname} id>")}
            answers: list[str] = []
            for field, child in _named_children(question):
                if field in _QUESTION_TEXT:
                    values[field] = _opt(child)
                elif field == "answer_list":
                    answers.extend(_texts(child))
            values["answers"] = answers
            questions.append(values)
    return {"kind": kind, "questions": questions}


def _surveys(element: etree._Element, kind: str, unconverted: Unconverted) -> list[Values]:
    return [_survey(child, kind, unconverted) for name, child in _named_children(element) if name]


def _system_information(element: etree._Element) -> list[Values]:
    categories = []
    for name, category in _named_children(element):
        if not name:
            continue
        fields: tuple[str, ...] = ()
        rows: list[tuple[str, ...]] = []
        for part, child in _named_children(category):
            if part == "description":
                fields = _texts(child)
            elif part == "data":
                rows.extend([_texts(row) for row in child])
        categories.append({"name": category.get("name", ""), "fields": fields, "rows": rows})
    return categories


#: A session's events name the same few people over and over: each is built
#: once per session and shared (models are immutable); pydantic takes a model
#: instance as it is instead of validating it again.
_Entities = dict[tuple[str | None, str | None, str], Entity]


def _event(element: etree._Element, entities: _Entities, unconverted: Unconverted) -> Values:
    # The hottest loop of a report (tens of events per session): children are
    # walked inline rather than through _named_children.
    moment = _time(element)
    if moment is None:
        # Never a default: a made-up time would misplace the event in every archive.
        raise ValueError(f"an <event event_type={element.get('event_type', '')!r}> has no time")
    values: Values = {"timestamp": moment, "event_type": element.get("event_type", "")}
    names = LOCAL_NAMES
    for child in element:
        name = names.get(child.tag) or local(child.tag)
        if name == "performed_by" or name == "destination":
            key = (child.get("gsnumber"), child.get("type"), child.text or "")
            entity = entities.get(key)
            if entity is None:
                entity = entities[key] = Entity(
                    gsnumber=_int(key[0], unconverted, f"<{name} gsnumber>"),
                    type=key[1],
                    name=key[2],
                )
            values[name] = entity
        elif name == "data":
            values["data"] = [
                {"name": pair.get("name", ""), "value": pair.get("value", "")} for pair in child
            ]
        elif name == "body":
            values["body"] = child.text or ""
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
            values["filesize"] = _int(child.text, unconverted, "<filesize>")
        elif name == "files":
            values["files"] = [
                {"name": f.text or "", "size": _int(f.get("size"), unconverted, "<file size>")}
                for f in child
            ]
        elif name == "system_information":
            values["system_information"] = _system_information(child)
    return values


_SESSION_TEXT = frozenset(
    {
        "session_type",
        "duration",
        "external_key",
        "session_chat_view_url",
        "session_chat_download_url",
        "session_recording_view_url",
        "session_recording_download_url",
    }
)
_SESSION_INT = frozenset({"lseq", "file_transfer_count", "file_move_count", "file_delete_count"})


def _same_person(rep: Values, primary: Values) -> bool:
    """Whether a ``<representative>`` is the session's ``<primary_rep>``: every
    identifier both give (gsnumber, id) agrees, and there is at least one."""
    known = [
        (rep[key], primary[key])
        for key in ("gsnumber", "id")
        if rep[key] is not None and primary[key] is not None
    ]
    return bool(known) and all(mine == theirs for mine, theirs in known)


def _derive_ownership(reps: list[Values], primary: Values | None, report: ReportKind) -> None:
    """Fill the flags a guide's ``<representative>`` does not carry.

    The PA guide's representative has no ``<primary_rep>`` child: the session's own
    ``<primary_rep gsnumber= id=>`` names the final owner, who is matched by gsnumber
    (and id where both give one). A presentation's presenters carry neither flag and
    the report names no primary presenter: each presenter owns the presentation, and
    a lone presenter is its primary one. A flag the report gives is kept as given.
    """
    for rep in reps:
        if "primary_rep" not in rep:
            if primary is not None:
                rep["primary_rep"] = _same_person(rep, primary)
            elif report == "presentation":
                rep["primary_rep"] = len(reps) == 1
        if "session_owner" not in rep:
            rep["session_owner"] = report == "presentation" or bool(rep.get("primary_rep"))


def parse_session(
    element: etree._Element,
    *,
    product: Product,
    report: ReportKind,
    host: str,
    xml: bytes | None = None,
) -> Session:
    """Build a :class:`Session` from one ``<session>`` element.

    :param xml: the session's standalone XML: its events are then built from it on
        first use (:class:`~btic.appliance.model.LazyEvents`); without it, now.
    :raises ValueError: for a value that cannot be read (a time out of range,
        a model of the wrong shape), naming the field; for an event, when they
        are built.
    """
    lsid = (element.get("lsid") or "").strip()
    if not lsid:
        # The lsid is the item's key: without it, no name, row or ledger entry is its own.
        raise ValueError("the <session> has no lsid attribute")
    unconverted: Unconverted = []
    values: Values = {
        "product": product,
        "report": report,
        "host": host,
        "lsid": lsid,
    }
    for name, child in _named_children(element):
        if name in _SESSION_TEXT:
            values[name] = _opt(child)
        elif name in _SESSION_INT:
            values[name] = _int(child.text, unconverted, f"<{name}>")
        elif name == "start_time" or name == "end_time":
            values[name] = _time(child)
        elif name == "public_site" or name == "jumpoint" or name == "primary_team":
            values[name] = _named(child, unconverted)
        elif name == "jump_group":
            values[name] = {
                "id": _int(child.get("id"), unconverted, "<jump_group id>"),
                "type": child.get("type"),
                "name": child.text or "",
            }
        elif name == "primary_customer" or name == "primary_rep":
            values[name] = _party(child, unconverted)
        elif name == "custom_attributes":
            values[name] = [
                {
                    "code_name": a.get("code_name", ""),
                    "display_name": a.get("display_name", ""),
                    "value": a.text or "",
                }
                for attribute_name, a in _named_children(child)
                if attribute_name
            ]
        elif name == "show_my_screen_recordings" or name == "command_shell_recordings":
            values[name] = _recording_links(child, unconverted)
        elif name == "customer_list" or name == "attendee_list":
            values["customers"] = [
                _customer(c, unconverted) for n, c in _named_children(child) if n
            ]
        elif name == "rep_list":
            values["representatives"] = [
                _representative(r, unconverted) for n, r in _named_children(child) if n
            ]
        elif name == "team_list":
            values["teams"] = [
                {
                    "id": _int(t.get("id"), unconverted, "<team id>"),
                    "name": t.text or "",
                    "primary_team": _flag(t.get("primary_team")),
                }
                for n, t in _named_children(child)
                if n
            ]
        elif name == "cust_survey_list":
            values["customer_surveys"] = _surveys(child, "customer", unconverted)
        elif name == "rep_survey_list":
            values["rep_surveys"] = _surveys(child, "representative", unconverted)
        elif name == "session_details":
            if xml is None:
                entities: _Entities = {}
                values["events"] = [_event(e, entities, unconverted) for e in child]
            elif len(child):
                values["events"] = LazyEvents(functools.partial(events_of, xml))
    if values.get("session_type") is None:
        values["session_type"] = "presentation" if report == "presentation" else "support"
    if "representatives" in values:
        _derive_ownership(values["representatives"], values.get("primary_rep"), report)
    if unconverted:
        values["unconverted"] = unconverted
    try:
        return Session.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{where}: {first['msg']}") from None


_EVENTS = TypeAdapter(tuple[Event, ...])


def events_of(xml: bytes) -> tuple[Event, ...]:
    """The events of one session's standalone XML (as :func:`parse_session` got it).

    :raises ValueError: for an event that cannot be read, naming it.
    """
    # The XML came out of the hardened parse of the report; read again as hardened.
    parser = etree.XMLParser(
        resolve_entities=False, load_dtd=False, no_network=True, remove_comments=True,
        remove_pis=True,
    )  # fmt: skip
    root = etree.fromstring(xml, parser)
    entities: _Entities = {}
    unconverted: Unconverted = []
    for name, child in _named_children(root):
        if name == "session_details":
            values = [_event(e, entities, unconverted) for e in child]
            try:
                return _EVENTS.validate_python(values)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in ("events", *first["loc"]))
                raise ValueError(f"{where}: {first['msg']}") from None
    return ()
