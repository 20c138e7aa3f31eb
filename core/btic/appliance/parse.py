"""Streaming, hardened parsing of the appliance's XML.

* Reports are parsed with ``lxml.etree.iterparse`` one ``<session>`` at a
  time; each element is cleared once handled, so memory follows the largest
  session, not the report.
* Element names are matched by local name (:mod:`btic.appliance.xmlnames`);
  each session element becomes a model in :mod:`btic.appliance.session_xml`.
* Entity expansion, DTD loading and network access are off, and a document
  that declares a DTD at all is refused before parsing: the appliance never
  sends one, so one is either corruption or an attack (XXE, billion laughs).
* An ``<error>`` that means "nothing matches" becomes an empty result; any
  other ``<error>`` raises :class:`btic.errors.ReportError` with its text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from lxml import etree

from btic.appliance.model import Product, ReportKind, Session
from btic.appliance.reports import ListingEntry
from btic.appliance.session_xml import int_or_none, parse_session
from btic.appliance.xmlnames import local
from btic.errors import MalformedReport, ReportError

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
        raise MalformedReport("", f"malformed XML: {exc}") from None


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
            session = parse_session(element, product=product, report=report, host=host, xml=xml)
        except (ValueError, OverflowError, OSError) as exc:  # pydantic's errors are ValueErrors
            lsid = element.get("lsid", "").strip()
            reason = f"session {lsid or '(no lsid)'} cannot be read: {_first_line(exc)}"
            _release(element)
            if on_unreadable is None:
                raise ReportError("", reason) from None
            on_unreadable(lsid, reason)
            continue
        _release(element)
        yield session, xml


#: Elements only one product's session reports have, by the API guides' element
#: tables: PA's jump groups; RS's public sites, teams, surveys, customer details and
#: presentations' attendees.
_PRODUCT_ELEMENTS: dict[str, Product] = {
    "jump_group": "pa",
    **dict.fromkeys(
        (
            "public_site",
            "primary_team",
            "team_list",
            "primary_cust",
            "attendee_list",
            "cust_survey_list",
            "rep_survey_list",
            "display_number",
        ),
        "rs",
    ),
}
#: An event's entity types by product: PA's endpoints and users, RS's customers and
#: attendees ("representative" is in both guides).
_PRODUCT_ENTITIES: dict[str, Product] = {
    "endpoint": "pa",
    "user": "pa",
    "customer": "rs",
    "attendee": "rs",
}


def detect_product(source: Path) -> tuple[Product, str] | None:
    """Which product's report a file is, and the evidence (``<jump_group>``,
    ``type="endpoint"``), from the first element only one product has; None when
    the file has none (a session with no people or groups).

    :raises ReportError: for malformed or hostile XML.
    """
    with source.open("rb") as handle:
        refuse_dtd(handle.read(_HEAD_BYTES), str(source))
    context = etree.iterparse(str(source), events=("start", "end"), **_HARDENED)
    try:
        for event, element in context:
            if event == "end":
                _release(element)  # memory stays flat when no element tells
                continue
            name = local(element.tag)
            product = _PRODUCT_ELEMENTS.get(name)
            if product is not None:
                return product, f"<{name}>"
            if name in ("performed_by", "destination"):
                kind = element.get("type", "")
                if kind in _PRODUCT_ENTITIES:
                    return _PRODUCT_ENTITIES[kind], f'<{name} type="{kind}">'
    except etree.XMLSyntaxError as exc:
        raise MalformedReport("", f"malformed XML: {exc}") from None
    return None


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
                lseq = int_or_none(child.text)
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
        raise MalformedReport("", f"malformed XML: {exc}") from None


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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
