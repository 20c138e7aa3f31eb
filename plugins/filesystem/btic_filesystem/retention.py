"""Retention: the newest ``retention_count`` backups of a site are kept.

The backups of a site are found by their file-name template, one path
segment at a time: only directories whose names the template can produce are
entered, so the walk stays within the backups' own directories however large
the rest of the archive is, and never follows a symbolic link.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import btic
from btic import naming


@dataclass(frozen=True)
class StoredBackup:
    path: Path
    timestamp: str
    modified: float


def backups_of_site(root: Path, template: str, backup: btic.Backup) -> list[StoredBackup]:
    """The backups of ``backup``'s site that ``template`` names under ``root``, newest first."""
    segments = naming.backup_patterns(template, backup)
    found: list[StoredBackup] = []
    # (directory, timestamp captured on the way down)
    level: list[tuple[Path, str]] = [(root, "")]
    for depth, pattern in enumerate(segments):
        last = depth == len(segments) - 1
        below: list[tuple[Path, str]] = []
        for directory, timestamp in level:
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                match = pattern.fullmatch(entry.name)
                if match is None:
                    continue
                stamp = timestamp or match.groupdict().get("ts") or ""
                if last and entry.is_file(follow_symlinks=False):
                    found.append(StoredBackup(Path(entry.path), stamp, entry.stat().st_mtime))
                elif not last and entry.is_dir(follow_symlinks=False):
                    below.append((Path(entry.path), stamp))
        level = below
    found.sort(key=lambda b: (b.timestamp, b.modified, str(b.path)), reverse=True)
    return found


def apply_retention(root: Path, template: str, backup: btic.Backup, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` backups of ``backup``'s site; return those removed."""
    removed = []
    for stored in backups_of_site(root, template, backup)[keep:]:
        try:
            stored.path.unlink()
        except OSError as exc:
            raise btic.DestinationError(
                f"{stored.path}: cannot remove an old backup: {exc.strerror or exc}"
            ) from None
        removed.append(stored.path)
    return removed


__all__ = ["StoredBackup", "apply_retention", "backups_of_site"]
