"""Report parsing: btic's streaming parser against lxml.etree.fromstring. Writes a
SupportSession report of at least --megabytes MB with the simulated appliance's
renderer, then parses it in separate processes (so each peak RSS is its own):
btic's iter_sessions (parsed models plus the standalone XML of each session, as
a transfer needs) and, as the baseline, one lxml.etree.fromstring of the whole
document. A third case builds every session's events too (they are built on
first use: what a destination that reads them, SQL, pays). A fourth, the
streaming floor, does only what any streaming parser with the same output must:
the iterparse, each session's standalone XML (tostring) and freeing what was
read, with no models; its ratio to the baseline is the most a faster model-
building could reach. The four alternate, --repeat times each; prints the
report's size and session count, then for each the best and the median
sessions/s, MB/s and peak RSS, and the ratios of the medians and of the bests.

    .venv/bin/python benchmarks/parse_reports.py [--megabytes 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, path = sys.argv[1], Path(sys.argv[2])
from lxml import etree
from btic.appliance.parse import iter_sessions
started = time.perf_counter()  # after the imports: parsing is measured, not start-up
if mode == "stream":
    count = 0
    for session, xml in iter_sessions(path, product="rs", report="support", host="bench"):
        count += 1
elif mode == "events":  # what a destination that reads the events (SQL) pays
    count = 0
    for session, xml in iter_sessions(path, product="rs", report="support", host="bench"):
        count += 1
        len(session.events)
elif mode == "floor":
    count = 0
    for _event, element in etree.iterparse(str(path), events=("end",), tag="{*}session",
                                           resolve_entities=False, no_network=True):
        xml = etree.tostring(element, encoding="UTF-8", xml_declaration=True, with_tail=False)
        count += 1
        element.clear(keep_tail=False)
        while element.getprevious() is not None:
            del element.getparent()[0]
else:
    root = etree.fromstring(path.read_bytes(), etree.XMLParser(huge_tree=True))
    count = len(root)
elapsed = time.perf_counter() - started
print(json.dumps({"sessions": count, "seconds": elapsed,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_report(path: Path, megabytes: int) -> int:
    from btic.sim.data import SimDataset
    from btic.sim.render import sessions_document

    target = megabytes * 1024 * 1024
    dataset = SimDataset(product="rs", seed=1, anchor=int(time.time()), sessions=0, live_sessions=0)
    base = dataset.anchor - 30 * 86400
    written = 0
    count = 0
    with path.open("wb") as out:
        batch = []
        while written < target:
            for _ in range(500):
                batch.append(dataset.add_session(base + count * 60, base + count * 60 + 1800))
                count += 1
            for chunk in sessions_document(dataset, batch, time.time(), "https://bench"):
                if chunk.startswith(b"<?xml") and written:
                    continue
                if chunk.startswith(b"</session_list>"):
                    continue
                out.write(chunk)
                written += len(chunk)
            batch = []
        out.write(b"</session_list>\n")
    return count


def run(mode: str, path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"stream": [], "events": [], "floor": [], "fromstring": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.xml"
        count = write_report(path, args.megabytes)
        size_mb = path.stat().st_size / 1024 / 1024
        print(f"report: {size_mb:.0f} MB, {count} sessions; {args.repeat} runs of each parser")
        for _ in range(args.repeat):
            for mode, figures in runs.items():
                figures.append(run(mode, path))
    assert all(r["sessions"] == count for figures in runs.values() for r in figures)
    seconds = {mode: sorted(r["seconds"] for r in figures) for mode, figures in runs.items()}
    names = (
        ("stream", "btic iter_sessions"),
        ("events", "... and every event"),
        ("floor", "streaming floor"),
        ("fromstring", "lxml fromstring"),
    )
    for mode, name in names:
        best, median = seconds[mode][0], statistics.median(seconds[mode])
        rss = max(r["peak_rss_mb"] for r in runs[mode])
        print(
            f"{name:20s} best {count / best:6.0f} sessions/s {size_mb / best:6.1f} MB/s"
            f"  median {count / median:6.0f} sessions/s {size_mb / median:6.1f} MB/s"
            f"  peak RSS {rss:5.0f} MB"
        )
    print(
        "speed ratio btic / fromstring: median "
        f"{statistics.median(seconds['fromstring']) / statistics.median(seconds['stream']):.2f}, "
        f"best {seconds['fromstring'][0] / seconds['stream'][0]:.2f}"
    )
    floor = statistics.median(seconds["floor"])
    stream, events = statistics.median(seconds["stream"]), statistics.median(seconds["events"])
    print(
        f"speed ratio btic / streaming floor: median {floor / stream:.2f}; "
        f"with every event built {floor / events:.2f}"
    )
    print(
        "speed ratio streaming floor / fromstring: median "
        f"{statistics.median(seconds['fromstring']) / statistics.median(seconds['floor']):.2f}, "
        f"best {seconds['fromstring'][0] / seconds['floor'][0]:.2f}"
    )
    peak = {mode: max(r["peak_rss_mb"] for r in figures) for mode, figures in runs.items()}
    print(f"memory ratio btic / fromstring: {peak['stream'] / peak['fromstring']:.3f}")


if __name__ == "__main__":
    main()
