"""Large bodies read straight from the socket (btic.appliance.body), over real sockets."""

from __future__ import annotations

import errno
import gzip
import hashlib
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from conftest import connect

from btic.appliance.answers import BodyIncomplete
from btic.appliance.body import DIRECT_MIN_BYTES, read_body
from btic.errors import ApplianceUnreachable
from btic.sim import SimulatedAppliance

# Over DIRECT_MIN_BYTES and over two spool writeback windows (8 MiB), a whole
# number of neither.
LARGE = 17 * 1024 * 1024 + 12_345


def closed_with_recording(sim: SimulatedAppliance) -> str:
    now = sim.now()
    return next(s.lsid for s in sim.dataset.all() if s.has_recording and s.closed_at(now))


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
@pytest.mark.parametrize("keep_alive", [False, True], ids=["close", "keep-alive"])
def test_a_large_recording_arrives_whole(tls, keep_alive, tmp_path):
    with SimulatedAppliance("rs", sessions=6, seed=21, recording_size=LARGE, tls=tls) as sim:
        now = sim.now()
        lsids = [s.lsid for s in sim.dataset.all() if s.has_recording and s.closed_at(now)][:3]
        with connect(sim, keep_alive=keep_alive) as client:
            for lsid in lsids:  # one after another: a connection left behind must not be reused
                download = client.download_recording("session", lsid, None, tmp_path)
                assert download.size == LARGE
                assert download.path.stat().st_size == LARGE
                assert download.sha256 == sim.recording_sha256(lsid, "session")
                assert hashlib.sha256(download.path.read_bytes()).hexdigest() == download.sha256


@pytest.mark.parametrize("fault", ["truncate", "reset"])
def test_a_large_recording_cut_off_is_fetched_again(fault, tmp_path):
    with SimulatedAppliance("rs", sessions=4, seed=22, recording_size=LARGE) as sim:
        lsid = closed_with_recording(sim)
        sim.faults.add(fault, 1, "recording")
        with connect(sim, retries=2) as client:
            download = client.download_recording("session", lsid, None, tmp_path)
        assert sim.faults.pending() == 0
    assert download.sha256 == sim.recording_sha256(lsid, "session")
    assert list(tmp_path.iterdir()) == [download.path]  # the cut-off copy is gone


def test_a_large_recording_always_cut_off_fails_with_what_arrived(tmp_path):
    with SimulatedAppliance(
        "rs", sessions=4, seed=23, recording_size=LARGE, faults="truncate:9@recording"
    ) as sim:
        lsid = closed_with_recording(sim)
        with (
            connect(sim, name="london", retries=1) as client,
            pytest.raises(ApplianceUnreachable) as info,
        ):
            client.download_recording("session", lsid, None, tmp_path)
    message = str(info.value)
    assert message.startswith("site london: SupportSessionRecording")
    assert f"failed after 2 tries: got {LARGE // 2} of {LARGE} bytes: the connection closed" in (
        message
    )
    assert list(tmp_path.iterdir()) == []


# -- read_body against a hand-written server: what the simulator never does -----


@contextmanager
def one_answer(head: bytes, body: bytes, *, then_stall: bool = False) -> Iterator[str]:
    """A server on loopback that answers one request with ``head`` + ``body``,
    then closes the connection, or holds it open without sending."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            conn.sendall(head + body)
            if then_stall:
                done.wait(30)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        done.set()
        thread.join(30)
        listener.close()


class Pieces:
    """A sink that keeps a copy of each piece it is handed, and the piece's type
    (a memoryview comes from the direct path)."""

    def __init__(self) -> None:
        self.copies: list[bytes] = []
        self.kinds: list[type] = []

    def __call__(self, piece: bytes | memoryview) -> None:
        self.kinds.append(type(piece))
        self.copies.append(bytes(piece))

    @property
    def body(self) -> bytes:
        return b"".join(self.copies)


def collect(url: str, timeout: float = 10) -> tuple[bytes, list[type]]:
    pieces = Pieces()
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
    ):
        count = read_body(response, pieces)
    assert count == len(pieces.body)
    return pieces.body, pieces.kinds


def test_a_body_of_stated_length_is_read_from_the_socket():
    body = bytes(range(256)) * (LARGE // 256)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    with one_answer(head, body) as url:
        received, kinds = collect(url)
    assert received == body
    assert memoryview in kinds  # the direct path served the rest


def test_a_small_body_stays_with_httpx():
    body = b"x" * (DIRECT_MIN_BYTES // 4)
    with one_answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body) as url:
        received, kinds = collect(url)
    assert received == body
    assert memoryview not in kinds


def test_a_chunked_body_stays_with_httpx():
    body = b"y" * (2 * DIRECT_MIN_BYTES)
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part)
        for part in (body[i : i + 65536] for i in range(0, len(body), 65536))
    )
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    with one_answer(head, chunked + b"0\r\n\r\n") as url:
        received, kinds = collect(url)
    assert received == body  # the chunk framing is httpx's to remove
    assert memoryview not in kinds


def test_an_encoded_body_is_never_taken_for_the_file():
    compressed = gzip.compress(b"z" * (4 * DIRECT_MIN_BYTES), compresslevel=0)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(
        compressed
    )
    with one_answer(head, compressed) as url:
        received, kinds = collect(url)
    assert received == compressed  # raw bytes as sent; the caller refuses or decodes them
    assert memoryview not in kinds


def test_a_connection_that_closes_early_is_incomplete():
    body = b"a" * (2 * DIRECT_MIN_BYTES)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(body) + 1000)
    with one_answer(head, body) as url, pytest.raises(BodyIncomplete) as info:
        collect(url)
    assert str(info.value) == f"got {len(body)} of {len(body) + 1000} bytes: the connection closed"


def test_a_stalled_body_times_out():
    body = b"b" * (2 * DIRECT_MIN_BYTES)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(body) * 2)
    with (
        one_answer(head, body, then_stall=True) as url,
        pytest.raises(
            BodyIncomplete, match=rf"^got {len(body)} of {len(body) * 2} bytes: .*timed out"
        ),
    ):
        collect(url, timeout=1)


def test_a_full_disk_is_not_taken_for_a_cut_body():
    """The sink's own error (the spool's disk full) is raised as it is: retrying the
    download would not help, and the appliance is not at fault."""
    body = b"c" * (3 * DIRECT_MIN_BYTES)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)

    def full(piece: bytes | memoryview) -> None:
        if isinstance(piece, memoryview):  # the direct path's pieces
            raise OSError(errno.ENOSPC, "No space left on device")

    with (
        one_answer(head, body) as url,
        httpx.Client(timeout=10) as client,
        client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
        pytest.raises(OSError, match="No space left on device") as info,
    ):
        read_body(response, full)
    assert not isinstance(info.value, BodyIncomplete)
    assert info.value.errno == errno.ENOSPC


# -- through an HTTPS proxy: the appliance's TLS inside the proxy's -------------


@contextmanager
def https_proxy(tmp_path) -> Iterator[tuple[str, str]]:
    """A CONNECT proxy on loopback that clients reach over TLS (its own CA): the
    appliance's TLS then runs inside the proxy's. Yields (proxy URL, its CA file)."""
    from btic.sim.tls import make_certificates

    certificates = make_certificates(tmp_path / "proxy-tls", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert_path, certificates.key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def relay(client: ssl.SSLSocket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(65536)
        host, _, port = head.split(b" ", 2)[1].decode().rpartition(":")
        with socket.create_connection((host, int(port))) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            # One thread, both directions: an SSL socket is not read and written at once.
            sockets: list[socket.socket] = [client, upstream]
            while not stop.is_set():
                ready = [client] if client.pending() else select.select(sockets, [], [], 0.2)[0]
                for side in ready:
                    data = side.recv(65536)
                    if not data:
                        return
                    (upstream if side is client else client).sendall(data)

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(None)
            with context.wrap_socket(raw, server_side=True) as client:
                relay(client)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", str(certificates.ca_path)
    finally:
        stop.set()
        thread.join(30)
        listener.close()


def test_through_an_https_proxy_the_body_stays_with_httpx(tmp_path):
    with (
        SimulatedAppliance("rs", sessions=4, seed=24, recording_size=LARGE) as sim,
        https_proxy(tmp_path) as (proxy_url, proxy_ca),
    ):
        lsid = closed_with_recording(sim)
        trust = ssl.create_default_context(cafile=str(sim.ca_path))
        trust.load_verify_locations(cafile=proxy_ca)
        pieces = Pieces()
        with (
            httpx.Client(verify=trust, proxy=httpx.Proxy(proxy_url, ssl_context=trust)) as client,
            client.stream(
                "GET",
                f"{sim.url}/api/reporting",
                params={"generate_report": "SupportSessionRecording", "lsid": lsid},
                headers={"Authorization": f"Bearer {sim.tokens.grant()}"},
            ) as response,
        ):
            assert response.status_code == 200
            count = read_body(response, pieces)
    body = pieces.body
    assert count == len(body) == LARGE
    # Read from the socket, these would be the proxy's TLS records, not the recording.
    assert hashlib.sha256(body).hexdigest() == sim.recording_sha256(lsid, "session")
    assert memoryview not in pieces.kinds
