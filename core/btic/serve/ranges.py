"""HTTP range requests (RFC 9110, section 14) over an item of known size: a
recording plays from any point and a broken download resumes."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


class Unsatisfiable(Exception):
    """A range that lies wholly outside the item (answered 416)."""


@dataclass(frozen=True)
class ByteRange:
    """``length`` bytes from ``start`` of an item of ``size`` bytes."""

    start: int
    length: int
    size: int

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{self.size}"


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The one range ``header`` asks for; None to send the whole item (no header, a
    header this does not read, or several ranges: RFC 9110 lets a server ignore it).

    :raises Unsatisfiable: for a range that starts past the end, or an empty item.
    """
    if header is None:
        return None
    match = _SINGLE.match(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(header)
        start = max(0, size - suffix)
        return ByteRange(start, size - start, size)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise Unsatisfiable(header)
    if end < start:
        return None  # invalid: ignored, as RFC 9110 says
    return ByteRange(start, end - start + 1, size)
