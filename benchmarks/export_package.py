"""``btic export`` of a session with a large recording, as a directory and as a zip,
against copying the same bytes with ``cp`` and zipping them with Info-ZIP's ``zip``
(the same deflate level as Python's default, 6).

The simulated appliance serves one session with a --gigabytes recording; one
``btic sync`` archives it into a file-system destination. Then each export runs
--repeat times in a fresh process, btic and baseline alternating, and wall time
and peak RSS (the child's ``ru_maxrss``, through a small wrapper) are printed,
min and median, with baseline / btic of the medians (1.0: as fast).

    .venv/bin/python benchmarks/export_package.py [--gigabytes 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from seal_recording import BTIC, peak_and_time

from btic.sim import FrozenClock, SimulatedAppliance

MIB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        work = Path(scratch)
        config = work / "btic.toml"
        with SimulatedAppliance(
            "rs", sessions=1, live_sessions=0, presentations=0, clock=FrozenClock(),
            recording_size=int(args.gigabytes * 2**30), state_dir=work,
        ) as sim:  # fmt: skip
            config.write_text(
                sim.site_toml("sim") + 'first_run_since = "all"\n'
                f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{work / "a"}"\n'
                '[schedules.all]\nevery = "1d"\n[[schedules.all.transfers]]\nsite = "sim"\n'
                'destinations = ["archive"]\ndata = ["session", "recording"]\n'
            )
            config.chmod(0o600)
            subprocess.run([BTIC, "sync", "--all", "--config", str(config)], check=True)
        found = subprocess.run(
            [BTIC, "find", "--json", "--config", str(config)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        session = json.loads(found.stdout)["sessions"][0]
        [recording] = [i["location"] for i in session["items"] if i["data_type"] == "recording"]
        size = Path(recording).stat().st_size
        out = work / "out"
        commands = {
            ("directory", "btic"): [
                BTIC,
                "export",
                "--lsid",
                session["lsid"],
                "--config",
                str(config),
                "--out",
                str(out),
            ],
            ("directory", "cp"): ["cp", recording, str(out)],
            ("zip", "btic"): [
                BTIC,
                "export",
                "--lsid",
                session["lsid"],
                "--config",
                str(config),
                "--out",
                f"{out}.zip",
            ],
            ("zip", "zip"): ["zip", "-q", "-6", f"{out}.zip", recording],
        }
        results: dict[tuple[str, str], list[tuple[float, float]]] = {k: [] for k in commands}
        for _ in range(args.repeat):
            for form, tool in commands:
                shutil.rmtree(out, ignore_errors=True)
                out.unlink(missing_ok=True)  # cp made it a file
                Path(f"{out}.zip").unlink(missing_ok=True)
                results[(form, tool)].append(peak_and_time(commands[(form, tool)]))
        print(f"one session, a {size / 2**30:g} GiB recording, {args.repeat} runs each")
        print(
            f"{'form':10} {'tool':5} {'min s':>7} {'median s':>9} {'MB/s':>7} {'peak RSS MB':>12}"
        )
        medians = {}
        for (form, tool), runs in results.items():
            times = [t for t, _ in runs]
            medians[(form, tool)] = statistics.median(times)
            print(
                f"{form:10} {tool:5} {min(times):7.2f} {medians[(form, tool)]:9.2f} "
                f"{size / MIB / medians[(form, tool)]:7.0f} {max(r for _, r in runs):12.0f}"
            )
        for form, baseline in (("directory", "cp"), ("zip", "zip")):
            ratio = medians[(form, baseline)] / medians[(form, "btic")]
            print(f"{form}: {baseline} / btic (medians) = {ratio:.2f}")


if __name__ == "__main__":
    sys.exit(main())
