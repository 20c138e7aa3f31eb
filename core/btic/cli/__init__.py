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

from btic.cli import (
    backups,
    decrypt,
    find,
    integrity,
    notify,
    retention,
    schedules,
    serve,
    service,
    setup,
    simulated,
    status,
    transfers,
    verify,
)
from btic.cli.base import main

for command in (
    setup.plugins_command,
    setup.check_command,
    setup.init_command,
    transfers.transfer_command,
    schedules.sync_command,
    service.run_command,
    service.worker_command,
    status.status_command,
    status.retry_command,
    transfers.import_xml_command,
    simulated.demo_command,
    simulated.sim_command,
    backups.backup_group,
    decrypt.decrypt_command,
    verify.verify_command,
    find.find_command,
    find.export_command,
    retention.retention_command,
    retention.hold_group,
    integrity.integrity_group,
    notify.notify_group,
    serve.serve_group,
):
    main.add_command(command)

__all__ = ["main"]
