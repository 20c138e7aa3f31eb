"""How every page is made and sent: templates whose output is inert, and the
security headers every answer carries."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import jinja2
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Nothing but our own stylesheet and the archive's recordings: no script at all, no
#: frames, forms only to us.
POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

#: The audit of the audit: who saw what, when (btic's JSON log).
audit = structlog.get_logger("btic.serve")


def inert(value: object) -> object:
    """Every value a page shows, with control and format characters (a right-to-left
    override, an escape sequence) as U+FFFD: shown, never acted on. Jinja2's
    autoescape then makes markup text."""
    if isinstance(value, str):
        if value.isprintable():  # no control or format character: most values, at C speed
            return value
        return "".join(
            "\ufffd" if unicodedata.category(char) in ("Cc", "Cf") and char not in "\n\t" else char
            for char in value
        )
    return value


def _size(value: int | None) -> str:
    if value is None:
        return ""
    size = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{value} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    finalize=inert,
)
_environment.filters["size"] = _size
TEMPLATES = Jinja2Templates(env=_environment)


def page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    response: Response = TEMPLATES.TemplateResponse(
        request, template, context, status_code=status_code
    )
    return response


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
                    (b"cross-origin-resource-policy", b"same-origin"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, headed)
