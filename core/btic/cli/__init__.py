"""The ``btic`` command line.

Exit codes: 0 success; 1 the work failed (an appliance or destination could
not be reached, an item failed); 2 the configuration or the command line is
wrong. Commands stay thin: they parse options, call the modules that own the
work, and print; a :class:`btic.BticError` raised anywhere below becomes its
``error:`` lines and its exit code (see :mod:`btic.cli.base`).

One module per area: :mod:`~btic.cli.setup` (plugins, check, init),
:mod:`~btic.cli.transfers` (transfer, import-xml), :mod:`~btic.cli.schedules` (sync),
:mod:`~btic.cli.service` (run, the daemon; worker), :mod:`~btic.cli.notify` (notify test),
:mod:`~btic.cli.status` (status, retry),
:mod:`~btic.cli.simulated` (demo, sim), :mod:`~btic.cli.backups` (backup decrypt),
:mod:`~btic.cli.decrypt` (decrypt),
:mod:`~btic.cli.verify` (verify), :mod:`~btic.cli.find` (find, export) and
:mod:`~btic.cli.retention` (retention, hold), :mod:`~btic.cli.integrity` (integrity).
"""

from __future__ import annotations

from btic.cli.base import main

__all__ = ["main"]
