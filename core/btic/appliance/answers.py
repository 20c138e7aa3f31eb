"""Reading an appliance's HTTP answers: size caps, completeness, headers, reasons."""

from __future__ import annotations

import email.utils
import json
import math
import os
import re
import ssl
import time

import httpx

from btic.errors import ReportError

TOKEN_MARGIN = 60.0  # seconds before expiry at which a token is replaced
DEFAULT_TOKEN_LIFETIME = 3600.0
MIN_TOKEN_LIFETIME = 2 * TOKEN_MARGIN
MAX_TOKEN_LIFETIME = 86400.0
#: The most btic reads into memory of a token, Command API or error answer.
SMALL_BODY_CAP = 1024 * 1024
#: RFC 6750's b64token: what a bearer token may hold.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def token_lifetime(seconds: float) -> float:
    """``expires_in`` kept within reason: 0, negative or NaN would mean a token per call."""
    if not math.isfinite(seconds):
        return DEFAULT_TOKEN_LIFETIME
    return min(max(seconds, MIN_TOKEN_LIFETIME), MAX_TOKEN_LIFETIME)


def read_capped(response: httpx.Response, cap: int, what: str, name: str) -> bytes:
    """The whole body, refusing one larger than ``cap`` without holding it."""
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ReportError(
            name, f"site {name}: {what}: an answer of {int(declared)} bytes; at most {cap} expected"
        )
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > cap:
            raise ReportError(name, f"site {name}: {what}: an answer over {cap} bytes; refused")
    return bytes(body)


class BodyIncomplete(Exception):
    """A body ended early: retried like a dropped connection."""


def end_is_provable(headers: httpx.Headers) -> bool:
    """Whether the headers say where the body ends: a ``Content-Length``, or chunked
    encoding (whose last chunk marks the end). Without either the body ends where
    the connection closes, and a cut at a fixed byte looks like the end."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return True
    declared: str = headers.get("Content-Length", "")
    return declared.strip().isdigit()


def looks_complete(head: bytes, tail: bytes) -> bool:
    """Whether an XML document ends with its root element's end tag."""
    match = re.search(
        rb"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)[\s>/]",
        re.sub(rb"<\?.*?\?>", b"", head, flags=re.S),
    )
    if match is None:
        return False
    root = match.group(2)
    stripped = tail.rstrip()
    if re.search(rb"<(?:[A-Za-z_][\w.\-]*:)?" + re.escape(root) + rb"(\s[^<>]*)?/>$", stripped):
        return True
    return (
        re.search(rb"</(?:[A-Za-z_][\w.\-]*:)?" + re.escape(root) + rb"\s*>$", stripped) is not None
    )


def shorten(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def disposition_filename(header: str) -> str | None:
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', header)
    return os.path.basename(match.group(1)) if match else None


def oauth_error(status: int, body: bytes) -> str:
    try:
        error = json.loads(body).get("error", "")
    except (ValueError, AttributeError):
        return f"HTTP {status}"
    # The appliance's own words, kept to a safe alphabet: never a line break or a token.
    return f"HTTP {status} {re.sub(r'[^A-Za-z0-9_ .-]', '', str(error))[:60]}".strip()


def is_tls_failure(exc: Exception) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
