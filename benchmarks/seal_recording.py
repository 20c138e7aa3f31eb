"""Sealing a large recording to an age recipient (a destination's ``encrypt``), and
opening it again (``btic decrypt``), against Debian's ``age`` on the same file.

A file of --gigabytes random bytes stands for a recording in the spool. Each
step runs --repeat times in a fresh process, btic and age alternating:

* ``seal``: btic's :func:`btic.encryption.seal_file` (what the core runs for
  each sealing destination: stream in, age out, sha256 of what was written)
  against ``age -r RECIPIENT -o OUT FILE``;
* ``open``: ``btic decrypt FILE -i IDENTITY`` (streamed into a private temporary
  file, fsynced, renamed, sha256 of the plain bytes) against ``age -d -i``.

Wall time and peak RSS (the child's ``ru_maxrss``, through a small wrapper
process, so at least its ~10 MB) are printed, min and median, and the ratio age / btic of the
medians (1.0: as fast as age; above 1, faster).

    .venv/bin/python benchmarks/seal_recording.py [--gigabytes 2] [--repeat 3]
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

PYTHON = sys.executable
BTIC = str(Path(PYTHON).with_name("btic"))

SEAL = """
import sys
from pathlib import Path
from btic import encryption
recipient = encryption.parse_recipient(sys.argv[3])
encryption.seal_file(Path(sys.argv[1]), Path(sys.argv[2]), [recipient])
"""


def peak_and_time(command: list[str]) -> tuple[float, float]:
    """Run ``command``; its wall time (s) and peak RSS (MB), which a wrapper reads
    from ``wait4`` and prints."""
    wrapped = [
        PYTHON,
        "-c",
        (
            "import os, subprocess, sys\n"
            "child = subprocess.Popen(sys.argv[1:])\n"
            "_, status, usage = os.wait4(child.pid, 0)\n"
            "print(usage.ru_maxrss, flush=True)\n"
            "sys.exit(os.waitstatus_to_exitcode(status))\n"
        ),
        *command,
    ]
    began = time.perf_counter()
    done = subprocess.run(wrapped, check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    return elapsed, int(done.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        work = Path(scratch)
        identity = work / "auditor.key"
        subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
        recipient = subprocess.run(
            ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
        ).stdout.strip()
        source = work / "recording.flv"
        size = int(args.gigabytes * 2**30)
        with source.open("wb") as out:
            left = size
            while left:
                chunk = os.urandom(min(left, 1 << 24))
                out.write(chunk)
                left -= len(chunk)
        sealed, plain = work / "recording.flv.age", work / "recording.flv"
        commands = {
            ("seal", "btic"): [PYTHON, "-c", SEAL, str(source), str(sealed), recipient],
            ("seal", "age"): ["age", "-r", recipient, "-o", str(sealed), str(source)],
            ("open", "btic"): [
                BTIC,
                "decrypt",
                str(sealed),
                "-i",
                str(identity),
                "--out",
                str(work / "opened"),
                "--force",
            ],
            ("open", "age"): [
                "age",
                "-d",
                "-i",
                str(identity),
                "-o",
                str(work / "opened-by-age"),
                str(sealed),
            ],
        }
        results: dict[tuple[str, str], list[tuple[float, float]]] = {k: [] for k in commands}
        for _ in range(args.repeat):
            for step in ("seal", "open"):
                for tool in ("btic", "age"):
                    if step == "seal":
                        sealed.unlink(missing_ok=True)
                    results[(step, tool)].append(peak_and_time(commands[(step, tool)]))
                    if step == "seal" and tool == "age":
                        # The open step reads a file btic sealed (what the archive holds).
                        subprocess.run(commands[("seal", "btic")], check=True)
        opened = (work / "opened" / plain.name).read_bytes() == source.read_bytes()
        print(f"{args.gigabytes:g} GiB, {args.repeat} runs each; btic's output = source: {opened}")
        print(f"{'step':6} {'tool':5} {'min s':>7} {'median s':>9} {'MB/s':>7} {'peak RSS MB':>12}")
        medians = {}
        for (step, tool), runs in results.items():
            times = [t for t, _ in runs]
            medians[(step, tool)] = statistics.median(times)
            print(
                f"{step:6} {tool:5} {min(times):7.2f} {medians[(step, tool)]:9.2f} "
                f"{size / 2**20 / medians[(step, tool)]:7.0f} {max(r for _, r in runs):12.0f}"
            )
        for step in ("seal", "open"):
            ratio = medians[(step, "age")] / medians[(step, "btic")]
            print(f"{step}: age / btic (medians) = {ratio:.2f}")


if __name__ == "__main__":
    main()
