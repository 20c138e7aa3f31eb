"""``btic export``: an auditor's package of what a search found.

The package holds each matched item's bytes as its destination stored them (read
through the plugin's ``on_open``, streamed), a manifest of every item (CSV and
JSON: where it is in the package, its sha256 as exported and as the ledger
recorded it, where it came from, when it was delivered), the digests of the
destinations involved, and the public key that checks them. Written as a
directory or a zip file, one chunk at a time: memory stays flat for any size.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from btic import naming
from btic.config import Config
from btic.errors import DestinationError
from btic.find import FoundSession, iso_time
from btic.integrity import DIGEST_DIRECTORY, MANIFEST
from btic.plugins import PluginManager
from btic.state.entries import LedgerEntry
from btic.statuses import LedgerStatus
from btic.stored import stored_item_of

CHUNK = 1 << 20


class Package:
    """Where an export is written: a directory, or a zip file (``.zip``)."""

    def __init__(self, target: Path):
        self.target = target
        self._zip: zipfile.ZipFile | None = None
        if target.suffix.lower() == ".zip":
            self._zip = zipfile.ZipFile(target, "x", compression=zipfile.ZIP_DEFLATED)
        else:
            target.mkdir(parents=True, exist_ok=False)
            target.chmod(0o700)

    def write(self, name: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Write ``chunks`` as ``name``; return its size and sha256."""
        digest, size = hashlib.sha256(), 0
        with self._open(name) as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def _open(self, name: str) -> IO[bytes]:
        if self._zip is not None:
            return self._zip.open(name, "w", force_zip64=True)
        path = self.target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("xb")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


@dataclass
class ManifestEntry:
    """One item of the export."""

    path: str | None
    destination: str
    site: str
    lsid: str
    data_type: str
    item_key: str
    status: str
    location: str | None
    size: int | None
    sha256: str | None
    ledger_sha256: str | None
    recorded_at: str
    note: str | None = None
    #: when btic verify last found it as delivered (None: not since it was delivered)
    verified_at: str | None = None
    #: sealed to age recipients: ``sha256`` is the age file's, ``plain_sha256`` its content's
    encrypted: bool = False
    plain_sha256: str | None = None


def export(
    config: Config,
    plugins: PluginManager,
    found: list[FoundSession],
    package: Package,
    *,
    public_key: bytes | None,
) -> list[ManifestEntry]:
    """Write the package for ``found``; return its manifest (also written in it).
    Every destination involved must be configured (``on_configure``)."""
    manifest: list[ManifestEntry] = []
    involved: set[str] = set()
    for session in found:
        for item in session.items:
            involved.add(item.destination)
            manifest.append(_export_item(config, plugins, package, session, item))
    for destination in sorted(involved):
        if plugins.can_digest(destination):
            for digest in plugins.on_digests(destination):
                base = f"{DIGEST_DIRECTORY}/{naming.sanitize_value(destination)}/{digest.name}"
                package.write(f"{base}.json", [digest.body])
                package.write(f"{base}.json.sig", [digest.signature_file()])
    if public_key is not None:
        package.write("btic-signing.pub", [public_key])
    rows = [asdict(entry) for entry in manifest]
    package.write(MANIFEST, [json.dumps({"items": rows}, indent=2).encode() + b"\n"])
    text = io.StringIO()
    writer = csv.DictWriter(text, list(ManifestEntry.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    package.write("manifest.csv", [text.getvalue().encode()])
    return manifest


def _export_item(
    config: Config,
    plugins: PluginManager,
    package: Package,
    session: FoundSession,
    item: LedgerEntry,
) -> ManifestEntry:
    entry = ManifestEntry(
        path=None,
        destination=item.destination,
        site=item.site,
        lsid=session.session.lsid,
        data_type=item.data_type,
        item_key=item.item_key,
        status=str(item.status),
        location=item.location,
        size=item.size,
        sha256=None,
        ledger_sha256=item.sha256,
        recorded_at=iso_time(item.updated_at) or "",
        verified_at=iso_time(item.verified_at),
        encrypted=item.encrypted,
        plain_sha256=item.plain_sha256,
    )
    if item.status != LedgerStatus.DELIVERED or not item.location:
        entry.note = f"not in the archive ({item.status})"
        return entry
    if not plugins.can_open(item.destination):
        entry.note = "its destination cannot be read back by btic: see its location"
        return entry
    name = _package_name(item)
    stored = stored_item_of(config, item)
    try:
        with plugins.on_open(item.destination, item=stored) as source:
            entry.size, entry.sha256 = package.write(name, _chunks(source))
    except DestinationError as exc:
        entry.note = f"could not be read: {exc}"
        return entry
    entry.path = name
    if entry.ledger_sha256 is not None and entry.sha256 != entry.ledger_sha256:
        entry.note = "its bytes differ from what was delivered (btic verify says more)"
    return entry


def _package_name(item: LedgerEntry) -> str:
    suffixes = PurePosixPath(item.location or "").suffixes
    # A sealed item keeps what it is and that it is sealed: .xml.age, .flv.age.
    suffix = "".join(suffixes[-2:] if suffixes[-1:] == [".age"] else suffixes[-1:])
    parts = [naming.sanitize_value(part) for part in (item.destination, item.site, item.data_type)]
    key = naming.sanitize_value(item.item_key.replace("#", "-"))
    return "/".join(["items", *parts, key + suffix])


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    while chunk := source.read(CHUNK):
        yield chunk


def summary_of(manifest: list[ManifestEntry]) -> dict[str, Any]:
    copied = [e for e in manifest if e.path is not None]
    return {
        "items": len(manifest),
        "copied": len(copied),
        "bytes": sum(e.size or 0 for e in copied),
        "notes": sum(1 for e in manifest if e.note),
    }
