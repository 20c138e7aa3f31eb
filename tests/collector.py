"""An event collector (an HTTP Event Collector's shape) and a destination plugin for it.

The plugin is what a SIEM destination looks like on btic's plugin API: one event per
session report and per recording, session events batched by size, a sent-log in
``ctx.state`` (the collector cannot de-duplicate), ``ctx.last_sha256`` to recognise an
identical redelivery, and :class:`btic.DestinationBusy` when the collector answers 429.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PLUGIN = """
import hashlib
import json
import urllib.error
import urllib.request

import btic
from pydantic import BaseModel, ConfigDict


class Collector:
    api_version = (1, 0)
    limits = btic.DeliveryLimits(concurrency=2)

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        url: str
        batch_bytes: int = 4096

    @btic.hookimpl
    def on_configure(self, destination, options, app):
        self.url = options.url
        self.limits = btic.DeliveryLimits(concurrency=2, batch_bytes=options.batch_bytes)
        self.batch = []

    def _post(self, events):
        body = "\\n".join(json.dumps(event) for event in events).encode()
        request = urllib.request.Request(self.url, data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            if exc.code in (429, 503):
                wait = float(exc.headers.get("Retry-After", "1"))
                raise btic.DestinationBusy(f"{self.url}: {exc.code}", retry_after=wait) from None
            raise btic.DestinationError(f"{self.url}: {exc.code} {exc.reason}") from None
        except OSError as exc:
            raise btic.DestinationError(f"{self.url}: {exc}") from None

    def _already_sent(self, ctx, digest):
        return digest in (ctx.state.get(ctx.item_key), ctx.last_sha256)

    @btic.hookimpl
    def on_session_xml(self, session, xml, ctx):
        digest = hashlib.sha256(xml).hexdigest()
        location = f"{self.url}#{ctx.item_key}"
        if self._already_sent(ctx, digest):
            return btic.Delivery(location, sha256=digest)
        event = {"key": str(ctx.item_key), "lsid": session.lsid, "sha256": digest}
        self.batch.append((ctx.item_key, ctx.state, digest, event))
        return btic.Delivery(location, sha256=digest, deferred=True)

    @btic.hookimpl
    def on_recording(self, recording, ctx):
        location = f"{self.url}#{ctx.item_key}"
        if self._already_sent(ctx, recording.sha256):
            return btic.Delivery(location, sha256=recording.sha256)
        self._post([{"key": str(ctx.item_key), "sha256": recording.sha256}])
        ctx.state.put(ctx.item_key, recording.sha256)
        return btic.Delivery(location, size=recording.size, sha256=recording.sha256)

    @btic.hookimpl
    def on_flush(self):
        if self.batch:
            self._post([event for *_, event in self.batch])  # busy: the batch is kept
            for key, state, digest, _event in self.batch:
                state.put(key, digest)
            self.batch = []
"""


class CollectorService:
    """An HTTP collector on a local port: it answers ``busy`` requests with 429 and
    ``Retry-After`` first, then keeps every event it is sent (JSON lines)."""

    def __init__(self, *, busy: int = 0, retry_after: int = 1):
        self.busy = busy
        self.retry_after = retry_after
        self.events: list[dict[str, str]] = []
        self.requests = 0
        self.refused = 0
        self.in_flight = 0
        self.most_at_once = 0
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with service._lock:
                    service.requests += 1
                    service.in_flight += 1
                    service.most_at_once = max(service.most_at_once, service.in_flight)
                try:
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    with service._lock:
                        refuse = service.refused < service.busy
                        if refuse:
                            service.refused += 1
                        else:
                            service.events.extend(json.loads(line) for line in body.splitlines())
                    if refuse:
                        self.send_response(429)
                        self.send_header("Retry-After", str(service.retry_after))
                    else:
                        self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                finally:
                    with service._lock:
                        service.in_flight -= 1

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/events"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> CollectorService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def keys(self) -> list[str]:
        return sorted(event["key"] for event in self.events)
