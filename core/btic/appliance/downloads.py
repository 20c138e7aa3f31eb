"""A recording's or backup's body into a spool file: size checked, SHA-256, extension.

The file is a temporary ``btic-download-*.part`` in the given directory; it is
removed again if anything goes wrong before the body is complete, so a spool
never holds a cut-off download that could pass for a whole one.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import httpx

from btic.appliance.answers import BodyIncomplete, disposition_filename
from btic.appliance.body import read_body
from btic.appliance.site import Download

#: An extension taken from the appliance's file name: letters and digits only.
_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,10}$")


def save_download(response: httpx.Response, directory: Path, *, default_ext: str) -> Download:
    """Stream ``response``'s body into a new file in ``directory``.

    :param default_ext: the extension when the appliance's file name offers none
        that is safe.
    :raises BodyIncomplete: fewer bytes arrived than ``Content-Length`` states.
    """
    expected = response.headers.get("Content-Length")
    chunked = "chunked" in response.headers.get("Transfer-Encoding", "").lower()
    filename = disposition_filename(response.headers.get("Content-Disposition", ""))
    descriptor, temp = tempfile.mkstemp(prefix="btic-download-", suffix=".part", dir=directory)
    digest = hashlib.sha256()
    try:
        with os.fdopen(descriptor, "wb") as out:

            def keep(piece: bytes | memoryview) -> None:
                out.write(piece)
                digest.update(piece)

            size = read_body(response, keep)
        if expected is not None and int(expected) != size:
            raise BodyIncomplete(f"got {size} of {expected} bytes")
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    extension = extension_of(filename, default_ext)
    verified = expected is not None or chunked
    return Download(Path(temp), size, digest.hexdigest(), extension, filename, verified)


def extension_of(filename: str | None, default: str) -> str:
    """The lower-cased extension of the appliance's file name, if it is a safe one."""
    if filename and "." in filename:
        candidate = filename.rsplit(".", 1)[1]
        if _EXTENSION.match(candidate):
            return candidate.lower()
    return default
