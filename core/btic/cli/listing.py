"""What ``btic --help`` lists of the commands plugins add, without loading them.

Loading the plugins to list their commands would import every plugin and what it
imports (the SQL plugin: SQLAlchemy) on each ``btic --help``. Instead the lines
are kept in a small record in the user's cache directory, with a fingerprint of
the installed plugins (:func:`btic.entry_points.fingerprint`); a different
fingerprint (a plugin installed, upgraded, edited, or switched off) loads the
plugins once and writes the record again. Naming a plugin's command always loads
the plugins.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING

from btic.entry_points import fingerprint
from btic.locations import cache_directory

if TYPE_CHECKING:
    from btic.cli.base import Runtime

#: The record's name in btic's cache directory.
RECORD = "plugin-commands.json"


def plugin_command_lines(runtime: Runtime, own: Iterable[str]) -> dict[str, str]:
    """Each plugin command's name and help line (cut at 80 characters)."""
    mark = fingerprint()
    record = cache_directory() / RECORD
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        kept = json.loads(record.read_text())
        if kept["fingerprint"] == mark:
            return {str(name): str(line) for name, line in kept["commands"].items()}
    lines = {
        name: command.get_short_help_str(limit=80)
        for name, command in runtime.plugin_commands(own).items()
    }
    with contextlib.suppress(OSError):  # a read-only home only costs the next --help a load
        record.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(
            "w", dir=record.parent, prefix=".plugin-commands-", delete=False
        ) as out:
            json.dump({"fingerprint": mark, "commands": lines}, out)
        os.replace(out.name, record)
    return lines
