"""Fault injection for the simulated appliance.

A fault plan is written as a comma-separated spec (``btic sim --faults``) or
built from Python::

    latency=0.2            every answer waits 0.2 s
    bandwidth=2000000      answers share a link of 2,000,000 bytes/s (a WAN)
    clock=-3600            the appliance's clock runs an hour behind
    retry_after=2          the Retry-After seconds sent with 429
    500:2                  the next two requests answer 500 (also 502, 503, 504)
    429:1@SupportSession   the next SupportSession request answers 429
    reset:1@recording      the next recording download is reset mid-body
    truncate:1@report      the next XML report is cut off in the middle
    revoke:1               the next request finds every token revoked

A target is a report name (``SupportSessionListing``), ``report`` (any XML
report), ``recording`` (any recording), ``backup``, ``command`` or ``token``.
Without a target a fault hits the next request of any kind.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

KINDS = {"500", "502", "503", "504", "429", "reset", "truncate", "revoke"}
_ITEM = re.compile(r"^(?P<kind>[a-z0-9]+)(?::(?P<count>\d+))?(?:@(?P<target>[A-Za-z_]+))?$")


@dataclass
class Fault:
    kind: str
    count: int = 1
    target: str | None = None

    def matches(self, label: str) -> bool:
        if self.target is None or self.target == label:
            return True
        if self.target == "recording":
            return label.endswith("Recording")
        if self.target == "report":
            return label not in ("token", "command", "backup", "health") and not label.endswith(
                "Recording"
            )
        return False


class Link:
    """A link of ``rate`` bytes/s that every answer's bytes share, in turn: a
    writer waits until the link would have carried what was sent before it."""

    def __init__(self, rate: float):
        self.rate = rate
        #: bytes carried so far (what a benchmark's bound is computed from)
        self.carried = 0
        self._free_at = 0.0
        self._lock = threading.Lock()

    def carry(self, size: int) -> None:
        with self._lock:
            self.carried += size
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + size / self.rate
            done = self._free_at
        delay = done - time.monotonic()
        if delay > 0:
            time.sleep(delay)


@dataclass
class FaultPlan:
    latency: float = 0.0
    #: bytes/s of the link every answer shares; 0: unlimited
    bandwidth: float = 0.0
    clock_offset: float = 0.0
    retry_after: int = 1
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _link: Link | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan:
        plan = cls()
        for item in (spec or "").split(","):
            item = item.strip()
            if not item:
                continue
            if "=" in item:
                key, _, value = item.partition("=")
                try:
                    number = float(value)
                except ValueError:
                    raise ValueError(f"fault {item!r}: {key} needs a number") from None
                if key == "latency":
                    plan.latency = number
                elif key == "clock":
                    plan.clock_offset = number
                elif key == "retry_after":
                    plan.retry_after = int(number)
                elif key == "bandwidth" and number > 0:
                    plan.bandwidth = number
                else:
                    raise ValueError(
                        f"unknown fault setting {key!r} (or not a positive bandwidth); "
                        "allowed: latency, clock, retry_after, bandwidth"
                    )
                continue
            match = _ITEM.match(item)
            if not match or match["kind"] not in KINDS:
                raise ValueError(
                    f"cannot read fault {item!r}; write KIND[:COUNT][@TARGET] with KIND one of "
                    f"{', '.join(sorted(KINDS))}"
                )
            plan.add(match["kind"], int(match["count"] or 1), match["target"])
        return plan

    @property
    def link(self) -> Link | None:
        """The shared link answers are sent through, when the bandwidth is capped."""
        if not self.bandwidth:
            return None
        with self._lock:
            if self._link is None or self._link.rate != self.bandwidth:
                self._link = Link(self.bandwidth)
            return self._link

    def add(self, kind: str, count: int = 1, target: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self.faults.append(Fault(kind, count, target))

    def take(self, label: str) -> str | None:
        """The fault the next request with ``label`` suffers, if any (used up)."""
        with self._lock:
            for fault in self.faults:
                if fault.count > 0 and fault.matches(label):
                    fault.count -= 1
                    return fault.kind
        return None

    def pending(self) -> int:
        with self._lock:
            return sum(f.count for f in self.faults)
