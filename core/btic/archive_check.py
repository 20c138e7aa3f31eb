"""The auditor's check of an archive against its signed digests alone: no state
database, no configuration, only the public key and the archive (a directory, a
copy of one, an unpacked export, or an S3 bucket read through the S3 plugin).

Every digest's signature and every link of each chain is checked
(:func:`btic.integrity.check_chain`), then every item the latest digests say
was delivered is read and hashed against its entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from btic.errors import DestinationError
from btic.integrity import (
    DIGEST_DIRECTORY,
    MANIFEST,
    Digest,
    check_chain,
    latest_entries,
    read_digests,
)
from btic.plugins import PluginManager
from btic.types import DataType, ItemKey, SiteInfo, StoredItem

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Archive(Protocol):
    """What the check reads: chains of digests, and the items they name."""

    def chains(self) -> dict[str, list[Digest]]:
        """Each destination's digests (one chain for an archive, one per destination
        for an export)."""

    def where(self, location: str) -> str | None:
        """Where the item delivered to ``location`` is in this copy; None when the
        copy does not hold it by design (an export of some sessions)."""

    def open(self, where: str) -> AbstractContextManager[IO[bytes]]:
        """The item's bytes. :raises OSError or DestinationError: it is not there."""


@dataclass
class Report:
    digests: int = 0
    files: int = 0
    findings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": not self.findings,
            "digests": self.digests,
            "files": self.files,
            "findings": self.findings,
        }


def check_archive(archive: Archive, key: Ed25519PublicKey) -> Report:
    report = Report()
    for chain in archive.chains().values():
        report.digests += len(chain)
        problems, documents = check_chain(chain, key)
        report.findings += [problem.line() for problem in problems]
        for entry in latest_entries(documents):
            location = str(entry.get("location") or "")
            if entry.get("action") != "delivered" or not location:
                continue
            where = archive.where(location)
            if where is None:
                continue
            report.files += 1
            finding = _against(archive, where, entry)
            if finding is not None:
                report.findings.append(finding)
    return report


def _against(archive: Archive, where: str, entry: dict[str, Any]) -> str | None:
    """What is wrong with the item at ``where`` against its digest's entry, if anything."""
    digest = hashlib.sha256()
    try:
        with archive.open(where) as source:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, DestinationError) as exc:
        why = f": {exc}" if isinstance(exc, DestinationError) else ""
        return f"missing: {where} ({entry.get('item_key')}){why}"
    if entry.get("sha256") and digest.hexdigest() != entry["sha256"]:
        return f"changed: {where} ({entry.get('item_key')}): sha256 differs from its digest"
    return None


class DirectoryArchive:
    """A file-system archive, a copy of one (``root``: the archive's directory when
    its digests were written), or an unpacked btic export (it has a manifest)."""

    def __init__(self, directory: Path, root: str | None = None):
        self.directory = directory
        self.root = root
        manifest = directory / MANIFEST
        self._exported: dict[str, Path] | None = None
        if manifest.exists():
            items = json.loads(manifest.read_bytes())["items"]
            self._exported = {i["location"]: directory / i["path"] for i in items if i.get("path")}

    def chains(self) -> dict[str, list[Digest]]:
        top = self.directory / DIGEST_DIRECTORY
        if self._exported is not None:
            # An export: a chain per destination.
            return {d.name: list(read_digests(d)) for d in sorted(top.iterdir()) if d.is_dir()}
        return {"": list(read_digests(top))}

    def where(self, location: str) -> str | None:
        if self._exported is not None:
            found = self._exported.get(location)
            return None if found is None else str(found)
        if self.root is None:
            return location
        return str(self.directory / os.path.relpath(location, self.root))

    def open(self, where: str) -> AbstractContextManager[IO[bytes]]:
        return Path(where).open("rb")


class DestinationArchive:
    """An archive read through its destination's plugin (``on_digests``, ``on_open``):
    an S3 bucket, with the plugin's options made from the command line."""

    #: what the plugin is told of an item it is asked to open: only its location counts
    _SITE = SiteInfo("audit", "audit", "rs")

    def __init__(self, plugins: PluginManager, destination: str):
        self.plugins = plugins
        self.destination = destination

    def chains(self) -> dict[str, list[Digest]]:
        return {self.destination: list(self.plugins.on_digests(self.destination))}

    def where(self, location: str) -> str | None:
        return location

    def open(self, where: str) -> AbstractContextManager[IO[bytes]]:
        item = StoredItem(
            site=self._SITE,
            data_type=DataType.SESSION,
            item_key=ItemKey("audit", DataType.SESSION, "audit"),
            location=where,
            size=None,
            sha256=None,
            item_time=None,
        )
        return closing(self.plugins.on_open(self.destination, item=item))
