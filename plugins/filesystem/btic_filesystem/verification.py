"""``btic verify`` for a directory: what the ledger says is here, and what else is."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import btic
from btic import DataType, naming
from btic_filesystem import files
from btic_filesystem.retention import backups_of_site


def findings(
    items: Iterable[btic.StoredItem],
    *,
    backup_template: str,
    root: Path,
    retention_count: int | None,
) -> Iterator[btic.VerifyFinding]:
    """A finding for each item that is not here as delivered."""
    # The backups present, per (site host, extension): one walk each, however many
    # backups retention removed.
    present: dict[tuple[str, str], list[str]] = {}
    for item in items:
        path = Path(item.location)
        try:
            size = path.stat().st_size if path.is_file() else None
        except OSError:
            size = None
        if size is None:
            if not _rotated_out(item, backup_template, root, retention_count, present):
                yield btic.VerifyFinding("missing", item.location, "no such file", item.item_key)
            continue
        if item.size is not None and size != item.size:
            yield btic.VerifyFinding(
                "changed", item.location, f"{size} bytes, delivered {item.size}", item.item_key
            )
        elif item.sha256 is not None and files.sha256_file(path) != item.sha256:
            yield btic.VerifyFinding(
                "changed", item.location, "sha256 differs from what was delivered", item.item_key
            )


def _rotated_out(
    item: btic.StoredItem,
    template: str,
    root: Path,
    retention_count: int | None,
    present: dict[tuple[str, str], list[str]],
) -> bool:
    """Whether a missing backup is one that retention removed: as many newer backups
    of its site as retention keeps are here."""
    if item.data_type != DataType.BACKUP or not retention_count or item.item_time is None:
        return False
    # The extension as delivered: nsb, or nsb.age for backups encrypted at rest.
    suffix = Path(item.location).suffix.lstrip(".") or "nsb"
    extension = "nsb.age" if suffix == "age" else suffix
    probe = btic.Backup(
        site=item.site, time=item.item_time, extension=extension, size=0, sha256="",
        path=Path(item.location),
    )  # fmt: skip
    stamp = naming.backup_values(probe)["TIMESTAMP"]
    site_key = (item.site.host, extension)
    if site_key not in present:
        present[site_key] = [b.timestamp for b in backups_of_site(root, template, probe)]
    newer = [timestamp for timestamp in present[site_key] if timestamp > stamp]
    return len(newer) >= retention_count


def locations(root: Path, *, json_beside_xml: bool) -> Iterator[str]:
    """Every file under ``root`` btic could have delivered: not its hidden temporary
    files, and not the JSON copies written beside session XML (``xml+json``)."""
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        present = set(names)
        for name in sorted(names):
            if name.startswith("."):
                continue
            if json_beside_xml and name.endswith(".json") and f"{name[:-5]}.xml" in present:
                continue
            yield str(Path(directory) / name)
