"""The viewer's pages and their JSON API: search, a session, its items, integrity.

Every handler asks who is asking first: without a user a page redirects to the
login and an API answers 401. Every page view and download is written to the
audit log. A URL names a session by its site and lsid and an item by its
destination and data type; each is looked up in the state database, and only
what the ledger says a destination holds is ever opened, through its plugin.
"""

from __future__ import annotations

import functools
import json
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from btic.find import FoundSession, iso_time
from btic.serve.archive import ArchiveReader, ReadReport, Unavailable, body_of
from btic.serve.auth import Viewers
from btic.serve.ranges import Unsatisfiable, requested_range
from btic.serve.web import audit, page
from btic.state.entries import LedgerEntry
from btic.state.session_index import SessionQuery, TermFilter
from btic.state.verification import DestinationIntegrity
from btic.statuses import LedgerStatus
from btic.summaries import TermKind
from btic.types import DataType, ItemKey

#: The search fields, as the page and the API name them.
FIELDS = ("site", "lsid", "person", "customer", "host", "external_key", "since", "until")
#: Sessions a page or an API answer shows at most.
PAGE = 50
_TERMS = (("person", TermKind.PERSON), ("customer", TermKind.CUSTOMER), ("host", TermKind.HOST))


class BadQuery(ValueError):
    """A search field that cannot be read: the page says which."""


@dataclass(frozen=True)
class Search:
    """A search as the page's form and the API's query string give it."""

    asked: dict[str, str]
    page: int
    oldest_first: bool

    @classmethod
    def of(cls, request: Request) -> Search:
        asked = {field: request.query_params.get(field, "").strip() for field in FIELDS}
        try:
            number = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            number = 1
        return cls(asked, number, request.query_params.get("order") == "oldest")

    @property
    def given(self) -> bool:
        return any(self.asked.values())

    def query(self) -> SessionQuery:
        """The state database's query: one page, and one more row to know of a next.

        :raises BadQuery: for a time that does not parse.
        """
        a = self.asked
        return SessionQuery(
            site=a["site"] or None,
            lsid=a["lsid"] or None,
            external_key=a["external_key"] or None,
            since=_moment(a["since"], "since"),
            until=_moment(a["until"], "until"),
            terms=tuple(TermFilter.parse(kind, a[field]) for field, kind in _TERMS if a[field]),
            limit=PAGE + 1,
            offset=(self.page - 1) * PAGE,
            oldest_first=self.oldest_first,
        )

    def link(self, page: int) -> str:
        from urllib.parse import urlencode

        fields = {k: v for k, v in self.asked.items() if v}
        if self.oldest_first:
            fields["order"] = "oldest"
        return "?" + urlencode({**fields, "page": page})


def _moment(text: str, field: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        example = "2026-12-01 or 2026-12-01T08:00"
        raise BadQuery(f"{field}: not a date or an ISO time ({example})") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


#: A handler given the user's name, and the route handler it becomes.
Handler = Callable[["Views", Request, str], Awaitable[Response]]
Routed = Callable[["Views", Request], Awaitable[Response]]


def _for_users(*, page: bool) -> Callable[[Handler], Routed]:
    """The handler runs for a user (a page's anonymous caller is sent to the login,
    an API's or a download's is answered 401) and is given the user's name."""

    def wrapped(handler: Handler) -> Routed:
        @functools.wraps(handler)
        async def handled(self: Views, request: Request) -> Response:
            user = self._viewers.user_of(request)
            if user is None:
                return _to_login() if page else _unauthorized()
            return await handler(self, request, user)

        return handled

    return wrapped


class Views:
    """The handlers, over one :class:`ArchiveReader` and one :class:`Viewers`."""

    def __init__(self, reader: ArchiveReader, viewers: Viewers):
        self._reader = reader
        self._viewers = viewers

    def routes(self) -> list[Route]:
        return [
            Route("/", self.search_page, methods=["GET"]),
            Route("/api/sessions", self.search_api, methods=["GET"]),
            Route("/sessions/{site}/{lsid}", self.session_page, methods=["GET"]),
            Route("/api/sessions/{site}/{lsid}", self.session_api, methods=["GET"]),
            Route(
                "/sessions/{site}/{lsid}/items/{destination}/{data_type}",
                self.item,
                methods=["GET"],
            ),
            Route("/integrity", self.integrity_page, methods=["GET"]),
            Route("/api/integrity", self.integrity_api, methods=["GET"]),
        ]

    # -- search --

    @_for_users(page=True)
    async def search_page(self, request: Request, user: str) -> Response:
        search = Search.of(request)
        found: list[FoundSession] = []
        problem = None
        if search.given:
            try:
                found = await run_in_threadpool(self._reader.search, search.query())
            except BadQuery as exc:
                problem = str(exc)
        audit.info("search page", user=user, query=search.asked, page=search.page)
        return page(
            request,
            "search.html",
            {
                "user": user,
                "search": search,
                "asked": search.asked,
                "rows": [_row(f) for f in found[:PAGE]],
                "more": len(found) > PAGE,
                "problem": problem,
            },
            status_code=400 if problem else 200,
        )

    @_for_users(page=False)
    async def search_api(self, request: Request, user: str) -> Response:
        search = Search.of(request)
        try:
            found = await run_in_threadpool(self._reader.search, search.query())
        except BadQuery as exc:
            return JSONResponse({"ok": False, "problem": str(exc)}, status_code=400)
        audit.info("search api", user=user, query=search.asked, page=search.page)
        shown = found[:PAGE]
        return JSONResponse(
            {
                "ok": True,
                "page": search.page,
                "count": len(shown),
                "next": f"/api/sessions{search.link(search.page + 1)}"
                if len(found) > PAGE
                else None,
                "sessions": [
                    {**f.as_json(), "url": _session_url(f), "api": "/api" + _session_url(f)}
                    for f in shown
                ],
            }
        )

    # -- one session --

    @_for_users(page=True)
    async def session_page(self, request: Request, user: str) -> Response:
        read = await self._read(request)
        if read is None:
            return _not_found(request, user)
        found, report = read
        audit.info("session page", user=user, site=found.session.site, lsid=found.session.lsid)
        return page(
            request,
            "session.html",
            {
                "user": user,
                "found": found,
                "row": _row(found),
                "report": report,
                "session": report.session,
                "items": [self._item_view(found, item) for item in found.items],
                "api": "/api" + _session_url(found),
            },
        )

    @_for_users(page=False)
    async def session_api(self, request: Request, user: str) -> Response:
        read = await self._read(request)
        if read is None:
            return JSONResponse({"ok": False, "problem": "no such session"}, status_code=404)
        found, report = read
        audit.info("session api", user=user, site=found.session.site, lsid=found.session.lsid)
        answer = found.as_json()
        for item, entry in zip(answer["items"], found.items, strict=True):
            item["url"] = self._item_view(found, entry)["url"]
        return JSONResponse({"ok": True, **answer, "report": _report_json(report)})

    async def _read(self, request: Request) -> tuple[FoundSession, ReadReport] | None:
        """The session the URL names and its report as read; None when the archive
        has no such session."""
        site, lsid = request.path_params["site"], request.path_params["lsid"]
        found = await run_in_threadpool(self._reader.session, site, lsid)
        if found is None:
            return None
        return found, await run_in_threadpool(self._reader.read_report, found)

    # -- an item's bytes --

    @_for_users(page=False)
    async def item(self, request: Request, user: str) -> Response:
        params = request.path_params
        found = await run_in_threadpool(self._reader.session, params["site"], params["lsid"])
        entry = None if found is None else _entry(found, params, request.query_params)
        if found is None or entry is None or not self._reader.can_open(entry):
            return Response("Not Found", status_code=404, media_type="text/plain")
        try:
            stream = await run_in_threadpool(self._reader.open, entry)
        except Unavailable as exc:
            audit.warning("download failed", user=user, location=entry.location, reason=str(exc))
            return Response(f"{exc}\n", status_code=503, media_type="text/plain")
        size = entry.size
        try:
            wanted = None if size is None else requested_range(request.headers.get("range"), size)
        except Unsatisfiable:
            stream.close()
            return Response(status_code=416, headers={"content-range": f"bytes */{size}"})
        audit.info(
            "download",
            user=user,
            site=entry.site,
            lsid=params["lsid"],
            destination=entry.destination,
            data_type=entry.data_type,
            item_key=entry.item_key,
            range=None if wanted is None else wanted.content_range,
        )
        name = _file_name(entry)
        media_type = _media_type(entry, name)
        inline = media_type != "application/octet-stream" and "download" not in request.query_params
        headers = {
            "accept-ranges": "bytes" if size is not None else "none",
            "content-disposition": ("inline" if inline else "attachment")
            + f"; filename*=UTF-8''{_quoted(name)}",
        }
        if wanted is None:
            if size is not None:
                headers["content-length"] = str(size)
            return StreamingResponse(
                body_of(stream, 0, None), media_type=media_type, headers=headers
            )
        headers["content-range"] = wanted.content_range
        headers["content-length"] = str(wanted.length)
        return StreamingResponse(
            body_of(stream, wanted.start, wanted.length),
            status_code=206,
            media_type=media_type,
            headers=headers,
        )

    # -- integrity --

    @_for_users(page=True)
    async def integrity_page(self, request: Request, user: str) -> Response:
        overview = await run_in_threadpool(self._reader.integrity)
        audit.info("integrity page", user=user)
        return page(
            request,
            "integrity.html",
            {"user": user, "destinations": [_integrity_json(d) for d in overview]},
        )

    @_for_users(page=False)
    async def integrity_api(self, request: Request, user: str) -> Response:
        overview = await run_in_threadpool(self._reader.integrity)
        audit.info("integrity api", user=user)
        return JSONResponse({"ok": True, "destinations": [_integrity_json(d) for d in overview]})

    def _item_view(self, found: FoundSession, entry: LedgerEntry) -> dict[str, Any]:
        instance = _instance(found, entry)
        url = None
        if self._reader.can_open(entry):
            url = f"{_session_url(found)}/items/{_quoted(entry.destination)}/{entry.data_type}"
            if instance is not None:
                url += f"?instance={instance}"
        return {
            "entry": entry,
            "url": url,
            "media_type": _media_type(entry, _file_name(entry)),
            "instance": instance,
        }


def _row(found: FoundSession) -> dict[str, Any]:
    """One result row: the session, its duration, what is archived, and its proof."""
    s = found.session
    delivered = [i for i in found.items if i.status == LedgerStatus.DELIVERED]
    verified = [i.verified_at for i in delivered if i.verified_at is not None]
    duration = None
    if s.start_time is not None and s.end_time is not None:
        seconds = int((s.end_time - s.start_time).total_seconds())
        duration = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return {
        "session": s,
        "url": _session_url(found),
        "duration": duration,
        "data_types": sorted({i.data_type for i in delivered}),
        "encrypted": any(i.encrypted for i in delivered),
        # Proven when every delivered item was found intact: as of the stalest proof.
        "verified_at": min(verified) if delivered and len(verified) == len(delivered) else None,
        "unverified": len(delivered) - len(verified),
    }


def _session_url(found: FoundSession) -> str:
    return f"/sessions/{_quoted(found.session.site)}/{_quoted(found.session.lsid)}"


def _quoted(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _entry(found: FoundSession, params: Any, query: Any) -> LedgerEntry | None:
    wanted = query.get("instance") or None
    for entry in found.items:
        if (
            entry.destination == params["destination"]
            and entry.data_type == params["data_type"]
            and wanted == _text(_instance(found, entry))
        ):
            return entry
    return None


def _instance(found: FoundSession, entry: LedgerEntry) -> int | None:
    """The numbered recording's instance of ``entry`` (None for a report or the recording)."""
    key = ItemKey.from_ledger(found.session.host, DataType(entry.data_type), entry.item_key)
    return key.instance


def _text(number: int | None) -> str | None:
    return None if number is None else str(number)


def _file_name(entry: LedgerEntry) -> str:
    """The last part of the item's location, as a download is named."""
    return (entry.location or "item").replace("\\", "/").rsplit("/", 1)[-1]


#: What browsers play in a ``<video>`` or ``<audio>``; other recordings (a vendor's
#: player format, Flash video) are downloads.
PLAYABLE = frozenset({"video/mp4", "video/webm", "video/ogg", "audio/mpeg", "audio/ogg"})


def _media_type(entry: LedgerEntry, name: str) -> str:
    """What a browser is told the bytes are: a report in clear or a text recording as
    plain text (raw XML shown, never rendered: an XML document can carry XHTML
    script), what browsers play by its name; anything else (a sealed item, a
    vendor's format) is a download."""
    if entry.encrypted:
        return "application/octet-stream"
    guessed, _ = mimetypes.guess_type(name)
    if guessed in ("application/xml", "text/xml", "text/plain") or name.endswith(".xml"):
        return "text/plain; charset=utf-8"
    if guessed in PLAYABLE:
        return guessed
    return "application/octet-stream"


def _report_json(report: ReadReport) -> dict[str, Any]:
    return {
        "read_from": None if report.source is None else report.source.destination,
        "location": None if report.source is None else report.source.location,
        "intact": report.intact,
        "unavailable": report.reason,
        "session": None if report.session is None else report.session.model_dump(mode="json"),
    }


def _integrity_json(d: DestinationIntegrity) -> dict[str, Any]:
    return {
        "destination": d.destination,
        "delivered": d.delivered,
        "verified": d.verified,
        "oldest_verified": iso_time(d.oldest_verified),
        "digests": d.digests,
        "last_digest_at": iso_time(d.last_digest_at),
        "last_verify_at": iso_time(d.verified_at),
        "last_verify": None if d.report is None else json.loads(d.report),
    }


def _to_login() -> Response:
    return RedirectResponse("/login", status_code=303)


def _unauthorized() -> Response:
    return JSONResponse({"ok": False, "problem": "log in first"}, status_code=401)


def _not_found(request: Request, user: str) -> Response:
    return page(request, "missing.html", {"user": user}, status_code=404)
