"""Helpers a plugin may use beyond the types, errors and hooks of :mod:`btic`.

Public: kept by :data:`btic.PLUGIN_API_VERSION` like :mod:`btic` itself. Every
other module of the core is btic's own and may change in any release; the
shipped plugins use only :mod:`btic`, :mod:`btic.naming` (the names in its
``__all__``), this module and :mod:`btic.testing` (``tests/test_public_api.py``
holds them to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from btic.processes import process_alive
from btic.secrets import resolve_secret

if TYPE_CHECKING:
    from btic.cli.base import Runtime, config_option
else:

    def __getattr__(name: str) -> Any:
        # The command line's pieces load when a plugin's command asks for them: a
        # plugin's entry module imports this one, and must stay cheap to import.
        if name in ("Runtime", "config_option"):
            from btic.cli import base

            return getattr(base, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # For a plugin's own commands: the configuration as `btic` loads it, and its --config.
    "Runtime",
    "config_option",
    # Whether a process of this machine lives (a stale temporary file's writer).
    "process_alive",
    # A secret reference (env:NAME, file:PATH) read now, for a command's option.
    "resolve_secret",
]
