"""The simulated appliance's data: deterministic sessions from a seed.

Each session is a small :class:`SimSession` record (times, ids, which
recordings exist); everything else in its report (customers, representatives,
events, system information...) is generated on demand from
``Random(f"{seed}:{index}")``, so a report always renders the same bytes and a
dataset of 100,000 sessions costs a few megabytes.

Times are UNIX seconds on the appliance's clock. Sessions whose end lies in
the future are "in progress" until the clock passes it, so sessions keep
ending while the simulator runs.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

Product = Literal["rs", "pa"]
ReportKind = Literal["support", "access", "presentation"]

REPRESENTATIVES = [
    # id, username, private display name, public display name, display number
    (1, "admin", "Administrator", "Admin", 1),
    (2, "jdoe", "Jane Doe", "Jane", 2),
    (3, "asmith", "Alex Smith", "Alex", 3),
    (4, "mgarcia", "María García", "María", 4),
    (5, "kchen", "Kai Chen", "Kai", 5),
    (6, "okafor", "Ngozi Okafor", "Ngozi", 6),
]
TEAMS = [
    (1, "Tier 1 Support"),
    (2, "Tier 2 Support"),
    (3, "Security Operations"),
    (4, "Field Engineering"),
]
CUSTOMERS = [
    "Peter Parker",
    "Bruce W.",
    "Åsa Lindqvist",
    "Chidi Anagonye",
    "Zoë O'Brien",
    "李雷",
    "R&D <lab>",
]
COMPANIES = ["Example Corp", "ACME & Sons", "Globex", "Initech", "Umbrella Health"]
OPERATING_SYSTEMS = [
    "Windows 11 Enterprise (x64)",
    "macOS 14.5",
    "Ubuntu 22.04 LTS",
    "Windows Server 2022",
]
JUMPOINTS = [(1, "London DC"), (2, "Frankfurt DC")]
JUMP_GROUPS = [
    (1, "shared", "Production Servers"),
    (2, "shared", "Network Devices"),
    (6, "personal", "Jane Doe"),
]
PUBLIC_SITES = [(1, "Default"), (2, "Partner Portal")]
CUSTOM_ATTRIBUTES = [("ticket_system", "Ticket System"), ("cost_center", "Cost Center")]
RECORDING_EXTENSION = "flv"


@dataclass
class SimSession:
    """What the listing needs without rendering the report."""

    index: int
    report: ReportKind
    lsid: str
    lseq: int
    start: int
    end: int
    external_key: str | None
    has_recording: bool
    shell_instances: int
    sms_instances: int
    rep_ids: tuple[int, ...]
    team_ids: tuple[int, ...]
    site_id: int
    recording_expired: bool = False

    def closed_at(self, now: float) -> bool:
        return self.end <= now

    def recordings(self) -> Iterator[tuple[str, int | None]]:
        """(kind, instance) of each recording: instance as the API numbers it (from 0)."""
        if self.has_recording:
            yield ("presentation" if self.report == "presentation" else "session", None)
        for instance in range(self.shell_instances):
            yield ("command_shell", instance)
        for instance in range(self.sms_instances):
            yield ("show_my_screen", instance)


@dataclass
class SimDataset:
    """Every session the simulated appliance knows.

    :param product: ``rs`` or ``pa``.
    :param seed: makes everything deterministic.
    :param sessions: closed sessions spread over ``history_seconds`` before
        ``anchor``, plus ``live_sessions`` that end one by one after it.
    :param recording_size: bytes of each session recording; command shell and
        Show My Screen recordings are a quarter of it.
    :param shell_report_from: the number the SupportSession report gives the
        first command shell recording. The RS guide says both 1 ("Unlike the
        API, the SupportSession report enumerates instances starting at 1") and
        0; the API always counts from 0, and so does PA's report.
    :param instance_in_urls: whether recording ``download_url``s carry
        ``instance=`` (the guides do not promise it).
    """

    product: Product
    seed: int
    anchor: int
    sessions: int = 40
    live_sessions: int = 3
    live_interval: int = 30
    history_seconds: int = 2 * 86400
    recording_size: int = 256 * 1024
    backup_size: int = 512 * 1024
    presentations: int = 0
    expired_every: int = 0
    host: str = "127.0.0.1"
    shell_report_from: int = 1
    instance_in_urls: bool = True
    _items: list[SimSession] = field(default_factory=list, repr=False)
    _by_lsid: dict[str, SimSession] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.product == "pa":
            self.presentations = 0
            self.shell_report_from = 0
        total = self.sessions + self.presentations
        step = max(1, self.history_seconds // max(1, total))
        for i in range(total):
            report: ReportKind = "access" if self.product == "pa" else "support"
            if i % 7 == 6 and self.presentations and i // 7 < self.presentations:
                report = "presentation"
            start = self.anchor - self.history_seconds + i * step
            length = 60 + (i * 37) % 3000
            self._add(i, report, start, min(start + length, self.anchor - 1))
        for j in range(self.live_sessions):
            end = self.anchor + (j + 1) * self.live_interval
            self._add(total + j, "access" if self.product == "pa" else "support", end - 900, end)

    def _add(self, index: int, report: ReportKind, start: int, end: int) -> SimSession:
        rng = random.Random(f"{self.seed}:{index}")
        lsid = hashlib.md5(f"{self.seed}:{index}".encode()).hexdigest()
        presentation = report == "presentation"
        session = SimSession(
            index=index,
            report=report,
            lsid=lsid,
            lseq=1000 + index,
            start=start,
            end=end,
            external_key=None if presentation or index % 5 == 4 else f"INC{100000 + index}",
            has_recording=presentation or index % 4 != 3,
            shell_instances=0 if presentation else (index % 3 == 0) + (index % 6 == 0),
            sms_instances=0 if presentation or self.product == "pa" else int(index % 5 == 1),
            rep_ids=tuple(
                sorted(rng.sample([r[0] for r in REPRESENTATIVES], 1 + (index % 4 == 0)))
            ),
            team_ids=()
            if presentation
            else tuple(sorted(rng.sample([t[0] for t in TEAMS], 1 + (index % 3 == 1)))),
            site_id=PUBLIC_SITES[index % 9 == 8][0],
            recording_expired=bool(self.expired_every)
            and index % self.expired_every == self.expired_every - 1,
        )
        with self._lock:
            self._items.append(session)
            self._by_lsid[lsid] = session
        return session

    def add_session(self, start: int, end: int, report: ReportKind | None = None) -> SimSession:
        """Add a session (from tests: one that ends while a run is in progress)."""
        with self._lock:
            index = len(self._items)
        return self._add(
            index, report or ("access" if self.product == "pa" else "support"), start, end
        )

    def all(self) -> list[SimSession]:
        with self._lock:
            return list(self._items)

    def get(self, lsid: str) -> SimSession | None:
        return self._by_lsid.get(lsid)

    def recording_size_of(self, kind: str) -> int:
        if kind in ("session", "presentation"):
            return self.recording_size
        return max(1, self.recording_size // 4)


# -- recordings and backups as deterministic streams ---------------------------

_BLOCK = 256 * 1024


def content_stream(
    key: str, size: int, magic: bytes = b"FLV\x01\x05\x00\x00\x00\x09"
) -> Iterator[bytes]:
    """``size`` bytes unique to ``key``, generated block by block.

    Each block is a distinct-but-cheap variation (a counter prefix on a
    pseudo-random base block), so the stream never sits in memory whole and
    a misplaced block changes the sha256.
    """
    base = random.Random(key).randbytes(_BLOCK)
    header = magic + key.encode()[:64]
    sent = 0
    counter = 0
    while sent < size:
        block = counter.to_bytes(8, "big") + base[8:]
        if counter == 0:
            block = header + block[len(header) :]
        take = min(_BLOCK, size - sent)
        yield block[:take] if take < _BLOCK else block
        sent += take
        counter += 1


def content_sha256(key: str, size: int, magic: bytes | None = None) -> str:
    digest = hashlib.sha256()
    for chunk in content_stream(key, size) if magic is None else content_stream(key, size, magic):
        digest.update(chunk)
    return digest.hexdigest()


def shell_transcript(seed: int, lsid: str, instance: int) -> bytes:
    """The text form of a command shell recording (PA's ``format=txt``)."""
    lines = [f"# command shell {instance} of session {lsid}"]
    for step in range(1 + (seed + instance) % 5):
        lines += [f"$ systemctl status app{step}", f"app{step}.service - active (running)"]
    return ("\n".join(lines) + "\n").encode()


def recording_key(seed: int, lsid: str, kind: str, instance: int | None) -> str:
    return f"{seed}:{lsid}:{kind}:{instance if instance is not None else '-'}"
