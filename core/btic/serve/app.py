"""The viewer's web application: the login, the pages (:mod:`btic.serve.views`)
and what wraps them all.

Read-only: the only routes that take a POST are login and logout, which touch the
signed session cookie and nothing else. Every answer carries a strict
Content-Security-Policy (:mod:`btic.serve.web`).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from btic.config import Config
from btic.plugins import PluginManager
from btic.serve.archive import ArchiveReader
from btic.serve.auth import Logins, Viewers
from btic.serve.views import Views
from btic.serve.web import POLICY, SecurityHeaders, audit, page
from btic.state import StateStore

__all__ = ["POLICY", "make_app"]


def make_app(config: Config, plugins: PluginManager, *, https: bool = True) -> Starlette:
    """The viewer for ``config``'s state database, destinations and users.

    :param https: mark the login cookie ``Secure`` (off only for tests on loopback).
    """
    serve = config.serve
    logins = Logins(
        serve.users,
        failures=serve.lockout_failures,
        lock_seconds=serve.lockout_minutes * 60,
    )
    viewers = Viewers(serve.users, serve.trusted_proxies, serve.user_header)
    secret = (
        serve.session_secret.get_secret_value()
        if serve.session_secret is not None
        else secrets.token_urlsafe(32)
    )
    state = StateStore(config.state_url)
    views = Views(ArchiveReader(config, plugins, state), viewers)

    async def login_page(request: Request) -> Response:
        return page(request, "login.html", {"problem": None})

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
        return page(request, "login.html", {"problem": problem}, status_code=401)

    async def logout(request: Request) -> Response:
        audit.info("logout", user=viewers.user_of(request), client=_client(request))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def stylesheet(request: Request) -> Response:
        return Response(
            Path(__file__).with_name("templates").joinpath("btic.css").read_text(),
            media_type="text/css",
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/btic.css", stylesheet, methods=["GET"]),
        *views.routes(),
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
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None
