"""Where plugins are found, without loading any: the entry-point group, the
environment switches, and a fingerprint of what is installed."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

ENTRY_POINT_GROUP = "btic"
DISABLE_ENV = "BTIC_DISABLE_PLUGINS"
STRICT_ENV = "BTIC_STRICT_PLUGINS"


class InstalledPlugin(NamedTuple):
    """A plugin as its distribution's metadata describes it, not loaded."""

    name: str  # the entry point's, what ``plugin = "..."`` names
    value: str  # ``module:Class``
    distribution: str
    version: str


def installed() -> list[InstalledPlugin]:
    """Each plugin's entry point, distribution and version, from metadata alone (no
    plugin is imported; a plugin that would not load is listed all the same)."""
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        found.append(
            InstalledPlugin(
                ep.name, ep.value, dist.name if dist else "?", dist.version if dist else "?"
            )
        )
    return sorted(found)


def fingerprint(environ: Mapping[str, str] | None = None) -> str:
    """What a listing of the plugins' commands depends on: each plugin's entry point,
    distribution and version, the time its package's files last changed (an
    editable install changes without a new version), and the switches.
    Cheap: metadata and a few ``stat`` calls, no plugin imported."""
    environ = os.environ if environ is None else environ
    parts = [environ.get(DISABLE_ENV, ""), environ.get(STRICT_ENV, "")]
    for plugin in installed():
        parts += [*plugin, str(_changed(plugin.value.split(":")[0].split(".")[0]))]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _changed(package: str) -> int:
    """The latest modification time of a top-level package's modules (0 if not found)."""
    try:
        spec = importlib.util.find_spec(package)  # a top-level name: nothing is imported
    except (ImportError, ValueError):
        return 0
    if spec is None or spec.origin is None:
        return 0
    origin = Path(spec.origin)
    files = origin.parent.glob("*.py") if origin.name == "__init__.py" else [origin]
    try:
        return max((f.stat().st_mtime_ns for f in files), default=0)
    except OSError:
        return 0
