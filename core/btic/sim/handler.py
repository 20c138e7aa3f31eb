"""The simulated appliance's request handling: one HTTP request, as the guides answer it.

``POST /oauth2/token``, ``/api/command`` (``get_api_info``, ``check_health``),
``/check_health``, ``/api/reporting`` (session, listing and recording reports of
RS or PA) and ``/api/backup``, with GET and form-encoded POST; faults injected
on the way. The appliance's state (tokens, data, clock) lives in
:class:`~btic.sim.server.SimulatedAppliance`.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from btic.sim import render
from btic.sim.data import (
    RECORDING_EXTENSION,
    content_sha256,
    content_stream,
    recording_key,
    shell_transcript,
)
from btic.sim.faults import Link
from btic.sim.query import QueryError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from btic.sim.server import SimulatedAppliance

ACCESS_DENIED = {
    "error": "access_denied",
    "message": "The resource owner or authorization server denied the request.",
}

REPORTS = {
    "rs": {
        "SupportSession": ("support", "full"),
        "SupportSessionListing": ("support", "listing"),
        "SupportSessionRecording": ("support", "recording"),
        "CommandShellRecording": ("support", "command_shell"),
        "ShowMyScreenRecording": ("support", "show_my_screen"),
        "PresentationSession": ("presentation", "full"),
        "PresentationSessionListing": ("presentation", "listing"),
        "PresentationSessionRecording": ("presentation", "recording"),
    },
    "pa": {
        "AccessSession": ("access", "full"),
        "AccessSessionListing": ("access", "listing"),
        "AccessSessionRecording": ("access", "recording"),
        "CommandShellRecording": ("access", "command_shell"),
    },
}


NOT_FOUND_PAGE = b"<html><body>Document Not Found</body></html>"


def report_permission(product: str, report: str) -> str:
    if product == "pa":
        return "perm_reporting"
    return "perm_reporting_presentation" if report == "presentation" else "perm_reporting_support"


class _Aborted(Exception):
    """The handler cut the connection on purpose (a fault)."""


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    appliance: SimulatedAppliance

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that hang up (and faults that hang up on them) are normal here.
        pass


class _Throttled(io.BufferedIOBase):
    """A connection's output, sent through the simulated WAN link in 64 KiB pieces."""

    PIECE = 64 * 1024

    def __init__(self, out: io.BufferedIOBase, link: Link):
        super().__init__()
        self._out = out
        self._link = link

    def writable(self) -> bool:
        return True

    def write(self, buffer: ReadableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        for start in range(0, len(view), self.PIECE):
            piece = view[start : start + self.PIECE]
            self._link.carry(len(piece))
            self._out.write(piece)
        return len(view)

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self._out.close()
        super().close()


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimServer
    server_version = "btic-sim"

    def setup(self) -> None:
        super().setup()
        self.server.appliance.stats["connections"] += 1
        link = self.server.appliance.faults.link
        if link is not None:
            self.wfile = _Throttled(self.wfile, link)

    def log_message(self, format: str, *args: object) -> None:
        pass

    @property
    def sim(self) -> SimulatedAppliance:
        return self.server.appliance

    def do_GET(self) -> None:
        self._dispatch(dict(parse_qsl(urlsplit(self.path).query)))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        params = dict(parse_qsl(urlsplit(self.path).query))
        params.update(parse_qsl(body))
        self._dispatch(params)

    # -- routing ------------------------------------------------------------------

    def _dispatch(self, params: dict[str, str]) -> None:
        path = urlsplit(self.path).path
        label = {
            "/oauth2/token": "token",
            "/api/command": "command",
            "/check_health": "health",
            "/api/backup": "backup",
        }.get(path, params.get("generate_report", "reporting"))
        self.sim.stats[label] += 1
        if self.sim.faults.latency:
            time.sleep(self.sim.faults.latency)
        fault = self.sim.faults.take(label)
        try:
            if fault == "revoke":
                self.sim.revoke_tokens()
                fault = None
            if fault in ("500", "502", "503", "504"):
                return self._send(
                    int(fault), b"<html><body>Server Error</body></html>", "text/html"
                )
            if fault == "429":
                return self._send(
                    429,
                    b"Too Many Requests",
                    "text/plain",
                    {"Retry-After": str(self.sim.faults.retry_after)},
                )
            if path == "/oauth2/token":
                return self._token(params)
            if path == "/check_health":
                return self._send(200, b"<html><body>OK</body></html>", "text/html")
            if path not in ("/api/command", "/api/reporting", "/api/backup"):
                return self._not_found()
            if not self._authorised():
                return self._send(401, json.dumps(ACCESS_DENIED).encode(), "application/json")
            if path == "/api/command":
                return self._command(params)
            if path == "/api/backup":
                return self._backup(fault)
            return self._reporting(params, fault)
        except _Aborted:
            self.close_connection = True

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and self.sim.tokens.valid(token.strip())

    def _token(self, params: dict[str, str]) -> None:
        if self.command != "POST":
            return self._send(405, b"", "text/plain")
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            client_id = secret = ""
        if scheme.lower() != "basic" or (client_id, secret) != (
            self.sim.client_id,
            self.sim.client_secret,
        ):
            body: dict[str, object] = {
                "error": "invalid_client",
                "message": "Client authentication failed.",
            }
            return self._send(401, json.dumps(body).encode(), "application/json")
        if params.get("grant_type") != "client_credentials":
            body = {
                "error": "unsupported_grant_type",
                "message": "grant_type must be client_credentials.",
            }
            return self._send(400, json.dumps(body).encode(), "application/json")
        body = {
            "access_token": self.sim.tokens.grant(),
            "token_type": "Bearer",
            "expires_in": int(self.sim.tokens.ttl),
        }
        # Real appliances label the JSON as XML; clients must not care.
        return self._send(200, json.dumps(body).encode(), "text/xml")

    def _command(self, params: dict[str, str]) -> None:
        if self.sim.permissions.get("perm_command", "deny") in ("deny", "0", ""):
            return self._not_found()
        action = params.get("action")
        if action == "get_api_info":
            body = render.api_info_document(
                self.sim.product, int(self.sim.now()), self.sim.permissions
            )
        elif action == "check_health":
            body = render.health_document(self.sim.product, self.sim.bind_host, int(self.sim.now()))
        else:
            body = render.error_document(self.sim.product, f"Invalid action: {action!r}.")
        return self._send(200, body, "text/xml; charset=UTF-8")

    def _reporting(self, params: dict[str, str], fault: str | None) -> None:
        sim = self.sim
        name = params.get("generate_report", "")
        spec = REPORTS[sim.product].get(name)
        if spec is None:
            return self._xml(
                render.error_document(sim.product, f"Invalid report type: {name!r}."), fault
            )
        report, kind = spec
        if sim.permissions.get(report_permission(sim.product, report)) != "1":
            return self._not_found()
        if kind in ("recording", "command_shell", "show_my_screen"):
            return self._recording(report, kind, params, fault)
        try:
            selected = sim.select_sessions(report, params, kind)
        except QueryError as exc:
            return self._xml(render.error_document(sim.product, str(exc)), fault)
        if not selected:
            return self._xml(render.no_data_document(sim.product, report, sim.language), fault)
        if kind == "listing":
            chunks: Iterable[bytes] = render.listing_document(sim.product, report, selected)
        else:
            chunks = render.sessions_document(sim.dataset, selected, sim.now(), sim.url)
        return self._stream_xml(chunks, fault)

    def _recording(self, report: str, kind: str, params: dict[str, str], fault: str | None) -> None:
        sim = self.sim
        session = sim.dataset.get(params.get("lsid", ""))
        instance: int | None = None
        if kind != "recording":
            try:
                instance = int(params.get("instance", ""))
            except ValueError:
                return self._xml(
                    render.error_document(sim.product, "Invalid instance: must be an integer."),
                    None,
                )
        rec_kind = {"recording": "presentation" if report == "presentation" else "session"}.get(
            kind, kind
        )
        available = (
            session is not None
            and session.report == report
            and session.closed_at(sim.now())
            and (rec_kind, instance) in set(session.recordings())
        )
        if session is None or not available:
            return self._xml(
                render.error_document(sim.product, "No recording is available for this session."),
                None,
            )
        if session.recording_expired:
            return self._xml(render.error_document(sim.product, render.EXPIRED_MESSAGE), None)
        if rec_kind == "command_shell" and sim.product == "pa" and params.get("format") == "txt":
            # The PA guide: format=txt returns the shell's output as text, not a recording.
            assert instance is not None
            transcript = shell_transcript(sim.seed, session.lsid, instance)
            name = f"{sim.bind_host}-command_shell-{session.lsid}-{instance}.txt"
            return self._stream_file(iter([transcript]), len(transcript), "text/plain", name, fault)
        size = sim.dataset.recording_size_of(rec_kind)
        suffix = "" if instance is None else f"-{instance}"
        filename = f"{sim.bind_host}-{rec_kind}-{session.lsid}{suffix}.{RECORDING_EXTENSION}"
        stream = content_stream(recording_key(sim.seed, session.lsid, rec_kind, instance), size)
        return self._stream_file(stream, size, "video/x-flv", filename, fault)

    def _backup(self, fault: str | None) -> None:
        sim = self.sim
        if sim.permissions.get("perm_backup") != "1":
            return self._not_found()
        ts = int(sim.now())
        key = f"{sim.seed}:backup:{ts}"
        size = sim.dataset.backup_size
        sim.backups_served.append((ts, size, content_sha256(key, size, b"NSB\x00")))
        stamp = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y%m%d-%H%M%S")
        filename = f"{sim.bind_host}-backup-{stamp}.nsb"
        return self._stream_file(
            content_stream(key, size, b"NSB\x00"), size, "application/octet-stream", filename, fault
        )

    # -- sending ----------------------------------------------------------------------

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the appliance's clock, offset fault included.
        return super().date_time_string(self.sim.now() if timestamp is None else timestamp)

    def _not_found(self) -> None:
        # What an appliance answers for an API the account may not use (the guides' hint).
        self._send(404, NOT_FOUND_PAGE, "text/html")

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _xml(self, body: bytes, fault: str | None) -> None:
        if fault in ("truncate", "reset"):
            return self._stream_xml([body], fault)
        return self._send(200, body, "text/xml; charset=UTF-8")

    def _stream_xml(self, chunks: Iterable[bytes], fault: str | None) -> None:
        """Send an XML report chunked, as appliances stream long reports."""
        if fault in ("truncate", "reset"):
            whole = b"".join(chunks)
            chunks = [whole[: max(1, len(whole) // 2)]]
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=UTF-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pending: list[bytes] = []
        pending_size = 0
        for chunk in chunks:
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= 64 * 1024:
                self._chunk(b"".join(pending))
                pending, pending_size = [], 0
        if pending:
            self._chunk(b"".join(pending))
        if fault == "reset":
            self._reset()
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _stream_file(
        self,
        chunks: Iterator[bytes],
        size: int,
        content_type: str,
        filename: str,
        fault: str | None,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Disposition", f'attachment; filename="{filename}"')
        self.end_headers()
        sent = 0
        self.sim.file_started()
        try:
            for chunk in chunks:
                if fault in ("reset", "truncate") and sent + len(chunk) > size // 2:
                    self.wfile.write(chunk[: size // 2 - sent])
                    if fault == "reset":
                        self._reset()
                    self.close_connection = True
                    raise _Aborted
                self.wfile.write(chunk)
                sent += len(chunk)
            self.wfile.flush()
        finally:
            self.sim.file_ended(complete=sent == size)

    def _reset(self) -> None:
        """Hang up with a TCP reset, as a crashing appliance or proxy does."""
        try:
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        finally:
            raise _Aborted
