"""Answers into spool files: a recording's or backup's body (size checked, SHA-256,
extension) and a report's XML (size capped, checked for completeness).

The file is a temporary ``btic-download-*.part`` in the given directory; it is
removed again if anything goes wrong before the body is complete, so a spool
never holds a cut-off download that could pass for a whole one. A failure to
write there (a full disk) is raised as the ``OSError`` it is, never as a cut
answer: the caller names its spool in a :class:`~btic.errors.SpoolError`
(:func:`spool_writes`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from btic.appliance.answers import BodyIncomplete, disposition_filename, looks_complete
from btic.appliance.body import read_body
from btic.appliance.site import Download
from btic.errors import ReportTooLarge, SpoolError

#: How much of a report answer is read at a time.
_REPORT_CHUNK = 1024 * 1024
#: How much of a download is written before its pages are handed to the disk.
_WRITEBACK_BYTES = 8 * 1024 * 1024
#: An extension taken from the appliance's file name: letters and digits only.
_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,10}$")


def save_download(response: httpx.Response, directory: Path, *, default_ext: str) -> Download:
    """Stream ``response``'s body into a new file in ``directory``.

    :param default_ext: the extension when the appliance's file name offers none
        that is safe.
    :raises BodyIncomplete: fewer bytes arrived than ``Content-Length`` states.
    :raises OSError: the file could not be created or written (only the file's:
        the socket's errors are :class:`BodyIncomplete`).
    """
    expected = response.headers.get("Content-Length")
    filename = disposition_filename(response.headers.get("Content-Disposition", ""))
    descriptor, temp = tempfile.mkstemp(prefix="btic-download-", suffix=".part", dir=directory)
    digest = hashlib.sha256()
    try:
        # read_body raises the socket's errors as BodyIncomplete: an OSError out of
        # here is the file's.
        with os.fdopen(descriptor, "wb") as out:
            written = handed_over = 0  # handed over: bytes whose writeback has started

            def keep(piece: bytes | memoryview) -> None:
                nonlocal written, handed_over
                out.write(piece)
                digest.update(piece)
                written += len(piece)
                if written - handed_over >= _WRITEBACK_BYTES:
                    out.flush()
                    start_writeback(out.fileno(), handed_over, written - handed_over)
                    handed_over = written

            size = read_body(response, keep)
        if expected is not None and int(expected) != size:
            raise BodyIncomplete(f"got {size} of {expected} bytes")
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    extension = extension_of(filename, default_ext)
    return Download(Path(temp), size, digest.hexdigest(), extension, filename)


def save_report(
    response: httpx.Response, path: Path, max_bytes: int | None, *, site: str, what: str
) -> None:
    """Write a report answer into ``path``.

    :param site: the site's name, and ``what`` the report asked for: for the message
        of a report too large.
    :raises ReportTooLarge: the answer passed ``max_bytes`` (reading stops there).
    :raises BodyIncomplete: the XML stops before its root element's end.
    :raises OSError: the file could not be written.
    """
    head = b""
    tail = b""
    size = 0
    with path.open("wb") as out:
        for chunk in response.iter_bytes(_REPORT_CHUNK):
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise ReportTooLarge(site, f"site {site}: {what}: over {max_bytes} bytes")
            if len(head) < 512:
                head += chunk[: 512 - len(head)]
            tail = (tail + chunk)[-512:]
            out.write(chunk)
    if not looks_complete(head, tail):
        raise BodyIncomplete("the XML answer was cut off before its end")


def start_writeback(descriptor: int, offset: int, length: int) -> None:
    """Have the disk start writing a range of a file's pages, without waiting.

    Left to itself, the kernel writes a download's pages back only once a share
    of memory (gigabytes) is dirty, so the delivery's fsync then waits for all of
    them at once; started as they arrive, the disk works while the network does
    (recordings 2-4% faster through a capped link: benchmarks/README.md). Python
    has no ``sync_file_range``: ``POSIX_FADV_DONTNEED`` on pages still dirty
    starts their writeback, and the kernel drops only clean pages, so these stay
    cached for the destinations that read the file again.
    """
    if hasattr(os, "posix_fadvise"):  # not on Windows or macOS
        os.posix_fadvise(descriptor, offset, length, os.POSIX_FADV_DONTNEED)


@contextmanager
def spool_writes(directory: Path) -> Iterator[None]:
    """Raise a failure to create or write a spool file as the :class:`SpoolError`
    it is, naming ``directory``: one run's spool, so that its downloads' failures
    read as one message."""
    try:
        yield
    except OSError as exc:
        raise SpoolError.writing(directory, exc) from exc


def extension_of(filename: str | None, default: str) -> str:
    """The lower-cased extension of the appliance's file name, if it is a safe one."""
    if filename and "." in filename:
        candidate = filename.rsplit(".", 1)[1]
        if _EXTENSION.match(candidate):
            return candidate.lower()
    return default
