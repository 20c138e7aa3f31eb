"""Reading a large response body at the wire's speed.

httpx hands a streamed body over as h11 parses it: one event, and about a
hundred Python calls, per read from the socket. Over TLS a read returns one
TLS record (at most 16 KiB), so a 2 GB recording is some 130,000 trips
through that machinery, and a download ran at about half of curl's speed
from the same appliance with the CPU spent in the HTTP library (see
benchmarks/README.md, "Recording download").

For a body whose length the headers state, :func:`read_body` lets httpx
parse the headers and hand over the bytes it already holds, then reads the
rest of the body straight from the connection's socket into one reused
buffer (``recv_into``: no allocation per read, the GIL released while the
kernel and OpenSSL work) and passes it on a mebibyte at a time. httpx stays
the client's interface: the request, redirects refused, the status, the
headers and every error before the body are its; only the bytes of the body
take the short way.

The connection is not reused afterwards (h11 never saw the body end, so
httpcore closes it when the response is closed). btic closes connections
after each call by default anyway, as the API guides ask
(``sites.*.keep_alive``); with keep-alive on, bodies under
:data:`DIRECT_MIN_BYTES` stay on httpx's path so small answers keep their
connection.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import httpx

from btic.appliance.answers import BodyIncomplete

#: Bytes handed to the sink at a time on the direct path.
BUFFER_BYTES = 1024 * 1024
#: Below this many bytes left after the first chunk, httpx reads the rest.
DIRECT_MIN_BYTES = 1024 * 1024

#: Receives each piece of the body in order. On the direct path the piece is
#: a view of a buffer that is reused for the next one: use it, do not keep it.
Sink = Callable[[bytes | memoryview], object]


def read_body(response: httpx.Response, sink: Sink) -> int:
    """Hand every byte of ``response``'s streamed body to ``sink``; return the count.

    :raises BodyIncomplete: the connection ended or broke before the length
        the headers state (on the direct path; httpx raises its own
        ``TransportError`` on its path).
    """
    expected = _declared_length(response)
    raw = response.iter_raw(None if expected is not None else BUFFER_BYTES)
    received = 0
    if expected is not None:
        # httpx hands over everything it holds beyond the headers in one piece,
        # so after it the rest of the body is still in the socket.
        first = next(raw, b"")
        if first:
            sink(first)
            received = len(first)
        left = expected - received
        sock = _direct_socket(response) if left >= DIRECT_MIN_BYTES else None
        if sock is not None:
            return received + _receive(sock, left, sink, _read_timeout(response), received)
    for chunk in raw:
        sink(chunk)
        received += len(chunk)
    return received


def _declared_length(response: httpx.Response) -> int | None:
    """The body's length when the headers alone say where it ends, else None."""
    headers = response.headers
    if response.http_version != "HTTP/1.1" or "Transfer-Encoding" in headers:
        return None
    if headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        return None
    declared = headers.get("Content-Length", "")
    return int(declared) if declared.isdigit() else None


def _direct_socket(response: httpx.Response) -> socket.socket | None:
    """The socket whose plain reads give the body's bytes, if there is one.

    Not when TLS is done in memory above the socket (``ssl.SSLObject``: an
    HTTPS proxy carrying the appliance's TLS inside its own), where the
    socket's bytes are still encrypted.
    """
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    sock = stream.get_extra_info("socket")
    if not isinstance(sock, socket.socket):
        return None
    if isinstance(stream.get_extra_info("ssl_object"), ssl.SSLObject):
        return None
    return sock


def _read_timeout(response: httpx.Response) -> float | None:
    timeouts = response.request.extensions.get("timeout", {})
    read = timeouts.get("read") if isinstance(timeouts, dict) else None
    return float(read) if isinstance(read, int | float) else None


def _receive(sock: socket.socket, left: int, sink: Sink, timeout: float | None, done: int) -> int:
    """Read exactly ``left`` bytes from ``sock`` into ``sink``, a buffer at a time.

    Only the socket's errors say the body was cut; the sink's own (a full spool
    disk) are raised as they are, as on httpx's path, and are not retried as a
    cut answer.
    """
    buffer = memoryview(bytearray(BUFFER_BYTES))
    total = done + left
    received = 0

    def cut(got: int, why: str) -> BodyIncomplete:
        return BodyIncomplete(f"got {done + got} of {total} bytes: {why}")

    try:
        sock.settimeout(timeout)
    except OSError as exc:
        raise cut(0, f"{exc.__class__.__name__}: {exc}") from None
    while received < left:
        want = min(BUFFER_BYTES, left - received)
        filled = 0
        while filled < want:
            try:
                count = sock.recv_into(buffer[filled:want])
            except OSError as exc:  # timeouts and TLS errors are OSErrors too
                raise cut(received + filled, f"{exc.__class__.__name__}: {exc}") from None
            if count == 0:
                raise cut(received + filled, "the connection closed")
            filled += count
        sink(buffer[:filled])
        received += filled
    return received
