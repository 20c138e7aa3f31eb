"""Retention: the newest ``retention_count`` backups of a site are kept in the bucket.

A site's backups are the keys its backup template produces for the site, found
by listing only below the template's fixed leading part.
"""

from __future__ import annotations

import re
from typing import Any

import btic
from btic import naming
from btic_s3.service import described


def apply(
    client: Any, bucket: str, prefix: str, template: str, backup: btic.Backup, keep: int
) -> list[str]:
    """Delete all but the newest ``keep`` backups of ``backup``'s site; return their keys."""
    patterns = naming.backup_patterns(template, backup)
    whole = re.compile("/".join(p.pattern for p in patterns))
    rendered = naming.render(template, naming.backup_values(backup)).split("/")
    fixed: list[str] = []
    for pattern, segment in zip(patterns[:-1], rendered, strict=False):
        if pattern.pattern != re.escape(segment):
            break
        fixed.append(segment)
    below = prefix + "".join(f"{segment}/" for segment in fixed)
    found: list[tuple[str, Any, str]] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=below)
        for page in pages:
            for entry in page.get("Contents", ()):
                match = whole.fullmatch(entry["Key"][len(prefix) :])
                if match is not None:
                    found.append((match.group("ts"), entry["LastModified"], entry["Key"]))
        found.sort(reverse=True)
        removed = []
        for _stamp, _modified, key in found[keep:]:
            client.delete_object(Bucket=bucket, Key=key)
            removed.append(key)
    except btic.DestinationError:
        raise
    except Exception as exc:  # noqa: BLE001 - every service error becomes one line
        raise described(exc, f"s3://{bucket}/{below} (retention_count)") from None
    return removed


__all__ = ["apply"]
