"""Where a run keeps its downloads until every destination has them."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from btic.processes import process_alive

SPOOL_PARENT = "btic-spool"


def run_spool() -> Path:
    """This run's spool directory; spools of runs that died (SIGKILL) are removed first."""
    parent = Path(tempfile.gettempdir()) / SPOOL_PARENT
    parent.mkdir(mode=0o700, exist_ok=True)
    for entry in parent.iterdir():
        pid = entry.name.split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))
