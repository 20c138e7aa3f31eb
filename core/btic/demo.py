"""``btic demo``: a simulated appliance, a configuration and a first sync, in one directory."""

from __future__ import annotations

import os
from pathlib import Path

from btic.errors import UsageError
from btic.sim import SimulatedAppliance

# The file names are TOML values a user copies whole: not wrapped.
DEMO_CONFIG = """\
# Written by `btic demo`: a simulated appliance archived to ./archive.
{site}
first_run_since = "all"

[destinations.archive]
plugin = "filesystem"
directory = "archive"
file_name_format = "sim/%KIND%/%YEAR%-%MONTH%/%SUPPORT_SITE_HOST%-%SESSION_TYPE%-%LSID%.%EXTENSION%"
retention_count = 7
download_format = "xml+json"
[destinations.archive.file_name_formats]
command_shell_recording = "sim/command_shell/%YEAR%-%MONTH%/%LSID%-shell-%INSTANCE%.%EXTENSION%"
show_my_screen_recording = "sim/show_my_screen/%YEAR%-%MONTH%/%LSID%-sms-%INSTANCE%.%EXTENSION%"
backup = "sim/backups/%SUPPORT_SITE_HOST%-backup-%TIMESTAMP%.%EXTENSION%"

[schedules.every-15-minutes]
every = "15m"
[[schedules.every-15-minutes.transfers]]
site = "sim"
destinations = ["archive"]
data = ["session", "recording", "command_shell_recording", "show_my_screen_recording",
        "presentation", "presentation_recording"]

[schedules.nightly]
every = "1d"
at = "02:00"
[[schedules.nightly.transfers]]
site = "sim"
destinations = ["archive"]
data = ["backup"]
"""


def tls_available() -> bool:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return False
    return True


def prepare(
    directory: Path, *, sessions: int, recording_size: int, force: bool = False
) -> tuple[SimulatedAppliance, Path]:
    """Start the simulated appliance and write its configuration; returns both.

    :raises UsageError: when ``directory`` holds a configuration already and
        ``force`` is not given: it may be a user's own, not an earlier demo's.
    """
    config = directory / "btic.toml"
    if config.exists() and not force:
        raise UsageError(
            f"{config} exists; use --force to replace it (the archive and ledger there are kept)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    appliance = SimulatedAppliance(
        "rs",
        sessions=sessions,
        recording_size=recording_size,
        tls=tls_available(),
        live_sessions=2,
        state_dir=directory / "sim",
        seed=2024,
    ).start()
    secret = directory / "sim-client-secret"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(appliance.client_secret + "\n")
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(
            DEMO_CONFIG.format(
                site=appliance.site_toml("sim", secret_ref="file:sim-client-secret").strip()
            )
        )
    return appliance, config


def describe(directory: Path) -> list[str]:
    archive = directory / "archive"
    counts: dict[str, int] = {}
    total = 0
    for path in archive.rglob("*"):
        if path.is_file():
            kind = (
                path.relative_to(archive).parts[1]
                if len(path.relative_to(archive).parts) > 2
                else "other"
            )
            counts[kind] = counts.get(kind, 0) + 1
            total += path.stat().st_size
    lines = [f"archive: {archive}/ ({total / 1024 / 1024:.1f} MB)"]
    for kind, count in sorted(counts.items()):
        lines.append(f"  {kind:16s} {count:4d} files")
    return lines
