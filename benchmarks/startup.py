"""How long a quick command takes from a cold process: ``btic --help``, ``btic
--version``, ``btic status`` and ``btic sync`` with nothing due, against the floor
of any click command line (a Python process that imports click and prints a help
page).

Each command runs --repeat times in a fresh process, alternating with the baseline;
min and median wall time are printed, and baseline / btic. Modules are compiled
first, as an installed btic's are. The configuration is a site, a file-system
destination and a schedule whose run was just recorded (so ``sync`` finds nothing
due), on a SQLite state database.

    .venv/bin/python benchmarks/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BTIC = str(Path(sys.executable).with_name("btic"))
FLOOR = (
    "import click\n"
    "@click.group()\n"
    "def main():\n"
    "    'A command line.'\n"
    "@main.command()\n"
    "def one():\n"
    "    'One command.'\n"
    "main(['--help'])\n"
)
CONFIG = """
[sites.main]
host = "127.0.0.1:9"
client_id = "x"
client_secret = "y"
[destinations.archive]
plugin = "filesystem"
directory = "{root}/archive"
[schedules.daily]
every = "1d"
[[schedules.daily.transfers]]
site = "main"
destinations = ["archive"]
data = ["session"]
"""


def wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="btic-startup-") as tmp:
        root = Path(tmp)
        config = root / "btic.toml"
        config.write_text(CONFIG.format(root=root))
        config.chmod(0o600)
        env = {**os.environ, "XDG_CACHE_HOME": str(root / "cache")}
        # As an installed btic runs: from compiled modules (pip compiles a wheel's at
        # install; a source tree under PYTHONDONTWRITEBYTECODE compiles every module
        # on every start, a third of a second of the figures).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        source = Path(__file__).resolve().parents[1]
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(source / "core"),
                        str(source / "plugins")], env=env, check=True)  # fmt: skip
        # The schedule's run recorded now: the syncs below find nothing due (the
        # appliance at port 9 is never asked: a sync that were due would fail).
        subprocess.run([BTIC, "sync", "--config", str(config), "--all"], env=env,
                       capture_output=True)  # fmt: skip
        subprocess.run([BTIC, "--help"], env=env, capture_output=True)  # the plugins' record
        commands = {
            "--help": [BTIC, "--help"],
            "--version": [BTIC, "--version"],
            "status": [BTIC, "status", "--config", str(config)],
            "sync (nothing due)": [BTIC, "sync", "--config", str(config)],
        }
        floor = [sys.executable, "-c", FLOOR]
        for label, command in commands.items():
            ours, theirs = [], []
            for _ in range(args.repeat):
                ours.append(wall(command, env))
                theirs.append(wall(floor, env))
            mine, base = statistics.median(ours), statistics.median(theirs)
            print(
                f"{label:20} btic min {min(ours) * 1000:6.0f} ms median {mine * 1000:6.0f} ms  "
                f"click floor median {base * 1000:5.0f} ms  floor/btic {base / mine:.2f}"
            )


if __name__ == "__main__":
    main()
