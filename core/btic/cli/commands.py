"""btic's own commands, by name: where each lives and the line ``btic --help``
shows for it (the command's own short help, cut at 80 characters). ``btic --help``
reads this table and imports no command; a command's module is imported when the
command is named (``tests/test_cli_startup.py`` checks that each line is the
command's own).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LazyCommand:
    """A command imported when it is named: ``module:attribute``, and its help line."""

    module: str
    attribute: str
    short_help: str


COMMANDS: dict[str, LazyCommand] = {
    "backup": LazyCommand(
        "btic.cli.backups",
        "backup_group",
        "Work with archived backups.",
    ),
    "check": LazyCommand(
        "btic.cli.setup",
        "check_command",
        "Validate the configuration; unless --offline, test every site's credentials,...",
    ),
    "decrypt": LazyCommand(
        "btic.cli.decrypt",
        "decrypt_command",
        "Decrypt .age files that a destination with `encrypt` stored.",
    ),
    "demo": LazyCommand(
        "btic.cli.simulated",
        "demo_command",
        "Archive a simulated appliance into ./btic-demo, start to finish.",
    ),
    "export": LazyCommand(
        "btic.cli.find",
        "export_command",
        "An auditor's package of what a search finds: each item's bytes, a manifest...",
    ),
    "find": LazyCommand(
        "btic.cli.find",
        "find_command",
        "Sessions in the archive: who, when, which machines, and where each item is.",
    ),
    "hold": LazyCommand(
        "btic.cli.retention",
        "hold_group",
        "Legal holds: sessions that no retention rule may delete.",
    ),
    "import-xml": LazyCommand(
        "btic.cli.transfers",
        "import_xml_command",
        'Deliver previously downloaded session report files (the vendor\'s "XML Files"...',
    ),
    "init": LazyCommand(
        "btic.cli.setup",
        "init_command",
        "Write a commented starter configuration to PATH (- for standard output).",
    ),
    "integrity": LazyCommand(
        "btic.cli.integrity",
        "integrity_group",
        "Signed digests: the key pair, and checking an archive or an export with it.",
    ),
    "notify": LazyCommand(
        "btic.cli.notify",
        "notify_group",
        "E-mail notifications ([notifications.email]).",
    ),
    "plugins": LazyCommand(
        "btic.cli.setup",
        "plugins_command",
        "List installed destination plugins as JSON.",
    ),
    "retention": LazyCommand(
        "btic.cli.retention",
        "retention_command",
        "Apply the destinations' retention rules now (each run applies them too).",
    ),
    "retry": LazyCommand(
        "btic.cli.status",
        "retry_command",
        "Put the items given up back in the queue: the next ``btic sync`` (or the...",
    ),
    "run": LazyCommand(
        "btic.cli.service",
        "run_command",
        "Run the schedules as they come due, until stopped (systemd, containers).",
    ),
    "serve": LazyCommand(
        "btic.cli.serve",
        "serve_group",
        "Serve the read-only viewer over the archive: search, sessions, integrity.",
    ),
    "sim": LazyCommand(
        "btic.cli.simulated",
        "sim_command",
        "Serve a simulated RS or PA appliance until interrupted.",
    ),
    "status": LazyCommand(
        "btic.cli.status",
        "status_command",
        "Each schedule's period, last run, result and next run; for each site,...",
    ),
    "sync": LazyCommand(
        "btic.cli.schedules",
        "sync_command",
        "Run the schedules that are due, incrementally.",
    ),
    "transfer": LazyCommand(
        "btic.cli.transfers",
        "transfer_command",
        "Transfer a window or given sessions now (the vendor's API Tester).",
    ),
    "verify": LazyCommand(
        "btic.cli.verify",
        "verify_command",
        "Check every delivered item against the ledger: missing, changed, unexpected.",
    ),
    "worker": LazyCommand(
        "btic.cli.service",
        "worker_command",
        'Run the transfer tasks of a distributed btic (``[executor] kind = "celery"``).',
    ),
}
