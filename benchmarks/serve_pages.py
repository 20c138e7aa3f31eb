"""``btic serve`` against reading the same rows or bytes directly.

Three measures, each btic and its baseline alternating, ``--repeat`` times, min
and median printed with baseline / btic (1.0: the viewer adds nothing):

* ``search``: the search page and its JSON API over a state database of
  ``--sessions`` archived sessions (filled as ``find_sessions.py`` fills it), on
  SQLite and PostgreSQL; the baseline is :func:`btic.find.find` in-process for
  the same page of sessions (the rows read directly, no HTTP, no HTML).
* ``session``: the page of one session with ``--events`` events, read from a
  file-system archive and parsed; the baseline reads the same file and parses it
  with one ``lxml.etree.fromstring``.
* ``recording``: a ``--gigabytes`` recording downloaded from the viewer (a
  ``btic serve`` process, over loopback) in 1 MiB reads; the baseline reads the
  same file from disk in 1 MiB reads. The server's peak resident memory (VmHWM)
  is printed: flat means it does not grow with the file.

The viewer runs under uvicorn on a loopback port; the client is httpx with one
kept-alive connection, logged in through the trusted-proxy header.

    .venv/bin/python benchmarks/serve_pages.py [--sessions 1000000] [--events 5000]
        [--gigabytes 2] [--repeat 5] [--only search,session,recording]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from find_sessions import START, databases, fill

from btic.find import find
from btic.state import StateStore
from btic.state.session_index import SessionQuery, TermFilter
from btic.summaries import TermKind
from btic.testing.servers import free_port

HEADER = "X-Bench-User"
BTIC = str(Path(sys.executable).with_name("btic"))


def config_text(state_url: str, archive: Path) -> str:
    return (
        f'[state]\nurl = "{state_url}"\n'
        f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{archive}"\n'
        f'[serve]\ntrusted_proxies = ["127.0.0.1/32"]\nuser_header = "{HEADER}"\n'
    )


@contextlib.contextmanager
def viewer(config: Path) -> Iterator[str]:
    """The viewer in this process (uvicorn in a thread); its URL."""
    import uvicorn

    from btic.config import load_config
    from btic.plugins import PluginManager
    from btic.serve.app import make_app

    plugins = PluginManager().discover()
    app = make_app(load_config(config, plugins), plugins, https=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


def timed(repeat: int, ours: Callable[[], object], theirs: Callable[[], object]) -> str:
    mine, base = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours()
        mine.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        theirs()
        base.append(time.perf_counter() - t0)
    m, b = statistics.median(mine), statistics.median(base)
    return (
        f"btic min {min(mine) * 1000:8.1f} ms median {m * 1000:8.1f} ms  "
        f"baseline min {min(base) * 1000:8.1f} ms median {b * 1000:8.1f} ms  "
        f"baseline/btic {b / m:.2f}"
    )


def _person(text: str, prefix: bool = False) -> SessionQuery:
    return SessionQuery(terms=(TermFilter(TermKind.PERSON, text, prefix=prefix),))


def search(args: argparse.Namespace, tmp: Path) -> None:
    day_ago = START + timedelta(minutes=args.sessions) - timedelta(days=1)
    lsid = f"{args.sessions // 2:032x}"
    asks = {
        "person": ({"person": "user4242"}, _person("user4242")),
        "host": (
            {"host": "ws-04242"},
            SessionQuery(terms=(TermFilter(TermKind.HOST, "ws-04242"),)),
        ),
        "prefix": ({"person": "user42*"}, _person("user42", prefix=True)),
        "last day": ({"since": day_ago.isoformat()}, SessionQuery(since=day_ago)),
        "lsid": ({"lsid": lsid}, SessionQuery(lsid=lsid)),
    }
    with databases(args.databases.split(","), tmp) as urls:
        for name, url in urls:
            started = time.perf_counter()
            fill(url, args.sessions)
            took = time.perf_counter() - started
            print(f"{name}: {args.sessions:,} sessions filled in {took:.0f} s")
            config = tmp / f"{name}.toml"
            config.write_text(config_text(url, tmp / "archive"))
            state = StateStore(url)
            with (
                viewer(config) as base,
                httpx.Client(base_url=base, headers={HEADER: "bench"}) as client,
            ):
                for label, (params, query) in asks.items():
                    # the viewer asks for a page of 50 and one more, to know of a next page
                    page_of = dataclasses.replace(query, limit=51)
                    for route in ("/", "/api/sessions"):

                        def ours(route: str = route, params: dict[str, str] = params) -> None:
                            answer = client.get(route, params=params)
                            assert answer.status_code == 200, answer.text[:300]

                        def theirs(
                            query: SessionQuery = page_of, store: StateStore = state
                        ) -> None:
                            find(store, query)

                        print(f"{name:10} {label:8} {route:13} " + timed(args.repeat, ours, theirs))
            state.close()


#: One event of each kind the session page draws: chat, a file moved, a registry
#: change, system information ({n}: the event's number).
WHO = '<performed_by gsnumber="1" type="representative">Kai Chen</performed_by>'
EVENTS = [
    '<event timestamp="{t}" event_type="Chat Message">' + WHO
    + '<destination gsnumber="2" type="customer">Åsa</destination>'
    "<body>message {n}: the printer on floor 3 is out of toner again</body></event>",
    '<event timestamp="{t}" event_type="File Upload">' + WHO
    + "<filename>C:\\Users\\asa\\report-{n}.txt</filename><filesize>{n}0</filesize>"
    '<files><file size="{n}0">report-{n}.txt</file></files></event>',
    '<event timestamp="{t}" event_type="Registry Key Added">' + WHO
    + '<data><value name="key" value="HKLM\\Software\\Example\\{n}"/></data></event>',
    '<event timestamp="{t}" event_type="System Information Retrieved">' + WHO
    + '<system_information><category name="Drives"><description><field>Drive</field>'
    "<field>Type</field></description><data><row><field>C:</field><field>Local</field>"
    "</row></data></category></system_information></event>",
]  # fmt: skip


def session_report(lsid: str, events: int) -> bytes:
    """One RS session of ``events`` events shaped as the guide's."""
    ns = "https://www.beyondtrust.com/namespaces/API/reporting"
    parts = [EVENTS[n % len(EVENTS)].format(t=1_700_000_000 + n, n=n) for n in range(events)]
    end = 1_700_000_000 + events
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<session_list xmlns="{ns}">'
        f'<session lsid="{lsid}">'
        "<session_type>support</session_type><lseq>1</lseq>"
        f'<start_time timestamp="1700000000">x</start_time><end_time timestamp="{end}">x</end_time>'
        "<duration>01:00:00</duration>"
        '<rep_list><representative gsnumber="1" id="1"><username>kchen</username>'
        "<display_name>Kai Chen</display_name><session_owner>1</session_owner>"
        "<primary_rep>1</primary_rep></representative></rep_list>"
        f"<session_details>{''.join(parts)}</session_details></session></session_list>"
    ).encode()


def session_page(args: argparse.Namespace, tmp: Path) -> None:
    from lxml import etree

    config = tmp / "session.toml"
    config.write_text(config_text(f"sqlite:///{tmp / 'session-state.db'}", tmp / "archive"))
    saved = tmp / "long.xml"
    saved.write_bytes(session_report("long-session", args.events))
    subprocess.run(
        [BTIC, "import-xml", str(saved), "--dest", "archive", "--host", "support.example.com",
         "--config", str(config)],
        check=True,
    )  # fmt: skip
    (archived,) = (tmp / "archive").rglob("*long-session*.xml")
    print(f"session: {args.events:,} events, {archived.stat().st_size / 1e6:.1f} MB archived")
    with viewer(config) as base, httpx.Client(base_url=base, headers={HEADER: "bench"}) as client:
        route = "/sessions/support.example.com/long-session"
        shown = client.get(route)
        assert shown.status_code == 200 and shown.text.count('<li class="event">') == args.events

        def ours() -> None:
            assert client.get(route).status_code == 200

        def theirs() -> None:
            etree.fromstring(archived.read_bytes())

        print(f"session page {route}  " + timed(args.repeat, ours, theirs))
        api = route.replace("/sessions/", "/api/sessions/")
        print(f"session api  {api}  " + timed(args.repeat, lambda: client.get(api), theirs))


def recording(args: argparse.Namespace, tmp: Path) -> None:
    """A recording of --gigabytes through a ``btic serve`` process."""
    import sqlite3

    archive = tmp / "archive"
    archive.mkdir(exist_ok=True)
    path = archive / "big-recording.flv"
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        for _ in range(int(args.gigabytes * 1024)):
            out.write(block)
    size = path.stat().st_size
    state_url = f"sqlite:///{tmp / 'recording-state.db'}"
    StateStore(state_url).close()
    end = START
    moment = end.isoformat(" ")
    with sqlite3.connect(tmp / "recording-state.db") as db:
        db.execute(
            "INSERT INTO btic_sessions (site, lsid, host, product, start_time, end_time, "
            "people, customers, item_keys) "
            "VALUES ('sim', 'big', 'support.example.com', 'rs', ?, ?, '', '', 'big')",
            (moment, moment),
        )
        db.execute(
            "INSERT INTO btic_deliveries (site, destination, data_type, item_key, status, "
            "location, size, sha256, attempts, item_time, run_id, created_at, updated_at) "
            "VALUES ('sim', 'archive', 'recording', 'big', 'delivered', ?, ?, ?, 0, ?, 'b', ?, ?)",
            (str(path), size, "0" * 64, moment, moment, moment),
        )
    config = tmp / "recording.toml"
    config.write_text(
        '[sites.sim]\nhost = "support.example.com"\nclient_id = "x"\nclient_secret = "x"\n'
        + config_text(state_url, archive)
    )
    config.chmod(0o600)
    port = free_port()
    server = subprocess.Popen(
        [BTIC, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={HEADER: "bench"}, timeout=600) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    client.get("/api/integrity")
                    break
                time.sleep(0.1)
            idle = _peak_kib(server.pid)
            url = "/sessions/sim/big/items/archive/recording?download=1"

            def ours() -> None:
                got = 0
                with client.stream("GET", url) as answer:
                    for chunk in answer.iter_raw(1024 * 1024):
                        got += len(chunk)
                assert got == size, (got, size)

            def theirs() -> None:
                with path.open("rb") as source:
                    while source.read(1024 * 1024):
                        pass

            print(f"recording {size / 2**30:.1f} GiB  " + timed(args.repeat, ours, theirs))
            after = _peak_kib(server.pid)
            print(f"server peak RSS: {idle / 1024:.0f} MB before, {after / 1024:.0f} MB after")
    finally:
        server.terminate()
        server.wait()


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--gigabytes", type=float, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--only", default="search,session,recording")
    args = parser.parse_args()
    from btic import logs

    logs.configure("warning")  # the viewer's audit lines are not the figures
    wanted = args.only.split(",")
    with tempfile.TemporaryDirectory(prefix="btic-serve-") as tmp:
        for name, measure in (
            ("session", session_page),
            ("recording", recording),
            ("search", search),
        ):
            if name in wanted:
                measure(args, Path(tmp))


if __name__ == "__main__":
    main()
