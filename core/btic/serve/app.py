"""The viewer's web application: a login, the search page and its JSON API.

Read-only: the only routes that take a POST are login and logout, which touch the
signed session cookie and nothing else. Every answer carries a strict
Content-Security-Policy; every value from the archive is escaped by Jinja2's
autoescape (session data comes from the appliance's users: hostile).
"""

from __future__ import annotations

import secrets
import unicodedata
from pathlib import Path
from typing import Any

import jinja2
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from btic.config import Config
from btic.find import FoundSession, find
from btic.serve.auth import Logins
from btic.state import opened_state
from btic.state.session_index import SessionQuery, TermFilter
from btic.summaries import TermKind


def _inert(value: object) -> object:
    """Every value a page shows, with control and format characters (a right-to-left
    override, an escape sequence) as U+FFFD: shown, never acted on. Jinja2's
    autoescape then makes markup text."""
    if isinstance(value, str):
        return "".join(
            "\ufffd" if unicodedata.category(char) in ("Cc", "Cf") and char not in "\n\t" else char
            for char in value
        )
    return value


TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        finalize=_inert,
    )
)


def _page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    response: Response = TEMPLATES.TemplateResponse(
        request, template, context, status_code=status_code
    )
    return response


#: Nothing but our own stylesheet: no script at all, no frames, forms only to us.
POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: The search fields, as the page and the API name them.
FIELDS = ("site", "lsid", "person", "customer", "host", "external_key")
#: Sessions a page or an API answer shows at most.
PAGE = 100

audit = structlog.get_logger("btic.serve")


class SecurityHeaders:
    """Adds the Content-Security-Policy and its companions to every answer."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def headed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, headed)


def make_app(config: Config, *, https: bool = True) -> Starlette:
    """The viewer for ``config``'s state database and users.

    :param https: mark the login cookie ``Secure`` (off only for tests on loopback).
    """
    serve = config.serve
    logins = Logins(
        serve.users,
        failures=serve.lockout_failures,
        lock_seconds=serve.lockout_minutes * 60,
    )
    secret = (
        serve.session_secret.get_secret_value()
        if serve.session_secret is not None
        else secrets.token_urlsafe(32)
    )

    def user_of(request: Request) -> str | None:
        name = request.session.get("user")
        return name if isinstance(name, str) and name in serve.users else None

    async def login_page(request: Request) -> Response:
        return _page(request, "login.html", {"problem": None})

    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        if logins.check(name, password):
            request.session.clear()
            request.session["user"] = name
            audit.info("login", user=name, client=_client(request))
            return RedirectResponse("/", status_code=303)
        locked = logins.locked(name)
        audit.warning("login refused", user=name, locked=locked, client=_client(request))
        problem = (
            "Too many failed logins: this name is locked for a while."
            if locked
            else "Wrong name or password."
        )
        return _page(request, "login.html", {"problem": problem}, status_code=401)

    async def logout(request: Request) -> Response:
        audit.info("logout", user=user_of(request), client=_client(request))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def search_page(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        asked = {field: request.query_params.get(field, "").strip() for field in FIELDS}
        found = _search(config, asked) if any(asked.values()) else []
        audit.info("search page", user=user, query=asked)
        return _page(request, "search.html", {"user": user, "asked": asked, "found": found})

    async def api_sessions(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return JSONResponse({"ok": False, "problem": "log in first"}, status_code=401)
        asked = {field: request.query_params.get(field, "").strip() for field in FIELDS}
        found = _search(config, asked)
        audit.info("api sessions", user=user, query=asked, count=len(found))
        return JSONResponse(
            {"ok": True, "count": len(found), "sessions": [f.as_json() for f in found]}
        )

    async def stylesheet(request: Request) -> Response:
        return Response(
            Path(__file__).with_name("templates").joinpath("btic.css").read_text(),
            media_type="text/css",
        )

    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", search_page, methods=["GET"]),
        Route("/api/sessions", api_sessions, methods=["GET"]),
        Route("/btic.css", stylesheet, methods=["GET"]),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie="btic_session",
            same_site="strict",
            https_only=https,
            max_age=8 * 3600,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware)


def _search(config: Config, asked: dict[str, str]) -> list[FoundSession]:
    terms = tuple(
        TermFilter.parse(kind, asked[field])
        for field, kind in (
            ("person", TermKind.PERSON),
            ("customer", TermKind.CUSTOMER),
            ("host", TermKind.HOST),
        )
        if asked[field]
    )
    query = SessionQuery(
        site=asked["site"] or None,
        lsid=asked["lsid"] or None,
        external_key=asked["external_key"] or None,
        terms=terms,
        limit=PAGE,
    )
    with opened_state(config.state_url) as state:
        return find(state, query)


def _client(request: Request) -> Any:
    return request.client.host if request.client else None
