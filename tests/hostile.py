"""A small appliance for the cases the simulator must never produce.

Each test sets what it answers: the listing, the full report, a recording, a
token, raw bytes and statuses included, served over a real socket. It speaks
just enough of the APIs for btic to get that far.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

NS = "https://www.beyondtrust.com/namespaces/API/reporting"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/xml"})
    #: send no Content-Length and close the connection after the body
    no_length: bool = False


def session_xml(lsid: str, end: int | str = 1_700_000_000, extra: str = "") -> str:
    """One closed support session, as the RS guide shapes it."""
    start = end - 600 if isinstance(end, int) else 1_699_999_400
    return (
        f'<session lsid="{lsid}"><session_type>support</session_type><lseq>1</lseq>'
        f'<start_time timestamp="{start}">2023-11-14T22:03:20+00:00</start_time>'
        f'<end_time timestamp="{end}">2023-11-14T22:13:20+00:00</end_time>'
        f"<duration>00:10:00</duration>{extra}</session>"
    )


def report(*sessions: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<session_list xmlns="{NS}">'
        + "".join(sessions)
        + "</session_list>\n"
    ).encode()


def listing(*lsids: str, has_recording: bool = False) -> bytes:
    entries = "".join(
        f'<session_summary lsid="{lsid}" has_recording="{int(has_recording)}"><lseq>1</lseq>'
        "</session_summary>"
        for lsid in lsids
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<session_summary_list xmlns="{NS}">'
        f"{entries}</session_summary_list>\n"
    ).encode()


Route = Callable[[dict[str, str]], Answer]


class HostileAppliance:
    """``routes`` maps ``generate_report`` names, ``action`` names, ``token`` and
    ``backup`` to what to answer; the defaults make a healthy, empty RS appliance."""

    def __init__(self) -> None:
        self.now = int(time.time())
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.routes: dict[str, Route] = {
            "token": lambda _p: Answer(
                body=json.dumps(
                    {"access_token": "t0k3n", "token_type": "Bearer", "expires_in": 3600}
                ).encode()
            ),
            "get_api_info": lambda _p: Answer(
                body=(
                    '<?xml version="1.0"?><api_information><api_version>1.21.0</api_version>'
                    f"<timestamp>{self.now}</timestamp><permissions>"
                    '<permission name="perm_reporting_support">1</permission>'
                    '<permission name="perm_backup">1</permission>'
                    "</permissions></api_information>"
                ).encode()
            ),
            "SupportSessionListing": lambda _p: Answer(body=listing()),
            "SupportSession": lambda _p: Answer(body=report()),
        }
        appliance = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._serve(dict(parse_qsl(urlsplit(self.path).query)))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                self._serve({**dict(parse_qsl(urlsplit(self.path).query)), **form})

            def _serve(self, params: dict[str, str]) -> None:
                path = urlsplit(self.path).path
                name = {"/oauth2/token": "token", "/api/backup": "backup"}.get(
                    path, params.get("generate_report") or params.get("action") or path
                )
                appliance.requests.append((name, params))
                route = appliance.routes.get(name)
                answer = route(params) if route else Answer(404, b"Document Not Found")
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                if answer.no_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> HostileAppliance:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def site_toml(self, name: str = "evil") -> str:
        return (
            f'[sites.{name}]\nhost = "{self.host}"\nclient_id = "id"\nclient_secret = "secret"\n'
            'product = "rs"\nscheme = "http"\nfirst_run_since = "all"\nsettle_delay = "0s"\n'
        )

    def config(self, directory: object, data: tuple[str, ...] = ("session",)) -> str:
        types = ", ".join(f'"{d}"' for d in data)
        return (
            self.site_toml()
            + f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{directory}"\n'
            + '[schedules.s]\nevery = "15m"\n[[schedules.s.transfers]]\nsite = "evil"\n'
            + f'destinations = ["archive"]\ndata = [{types}]\n'
        )
