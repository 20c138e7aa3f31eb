"""A first sync over a WAN: wall time against the least any client could take.

The simulated appliance answers every request after --latency seconds and
sends every byte through one shared link of --bandwidth bytes/s. btic syncs
--sessions session reports and their recordings from scratch (`btic sync
--all`, as a user's first run). The bound is computed from what the
appliance served (its request counts and the bytes its link carried) by
:func:`lower_bound`: the calls that must follow one another (token,
get_api_info, the listing) one latency each, then the report batches on one
stream beside the recordings, at most --concurrency (the site's
download_concurrency) at a time, each call at least one latency and its bytes,
while all bytes share the link. Interpreter start-up is in btic's time, as a
user sees it.

    .venv/bin/python benchmarks/wan_sync.py --sessions 2000 --latency 0.05 --bandwidth 20e6
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BTIC = str(Path(sys.executable).with_name("btic"))
#: Requests that must follow one another before any report or recording.
SEQUENTIAL_LABELS = ("token", "command")


@dataclass(frozen=True)
class Work:
    """What a sync asked of the appliance.

    :ivar sequential_calls: calls each of which needs the one before (token,
        get_api_info, a listing).
    :ivar report_calls: report batches, one after another on the report stream.
    :ivar download_calls: recordings, at most ``download_concurrency`` at once.
    :ivar report_bytes: the bytes the report batches answered.
    :ivar download_bytes: the bytes the recordings answered.
    """

    sequential_calls: int
    report_calls: int
    download_calls: int
    report_bytes: int = 0
    download_bytes: int = 0


def lower_bound(work: Work, *, latency: float, bandwidth: float, concurrency: int) -> float:
    """The least wall time of ``work`` for a client that downloads at most
    ``concurrency`` recordings at once (the site's ``download_concurrency``, a
    limit the user sets for the appliance's sake) beside one report stream.

    The sequential calls take one latency each; then the longest of four times
    none can beat:

    - the report stream: its calls one after another, each a latency and its bytes;
    - rounds of ``concurrency`` downloads, a latency each;
    - every download's latency plus its bytes at the link's full speed, shared out
      over the ``concurrency`` connections;
    - all the bytes over the one link.
    """
    if concurrency < 1 or bandwidth <= 0:
        raise ValueError("concurrency must be at least 1 and bandwidth positive")
    reports = work.report_calls * latency + work.report_bytes / bandwidth
    rounds = math.ceil(work.download_calls / concurrency) * latency
    per_connection = (work.download_calls * latency + work.download_bytes / bandwidth) / concurrency
    link = (work.report_bytes + work.download_bytes) / bandwidth
    return work.sequential_calls * latency + max(reports, rounds, per_connection, link)


def work_of(
    stats: dict[str, int], carried: int, *, download_bytes: int, sequential_bytes: int = 0
) -> Work:
    """The Work of a run from the simulator's request counts (by label), the bytes its
    link carried, and how many of those were recordings."""
    sequential = sum(stats.get(label, 0) for label in SEQUENTIAL_LABELS) + sum(
        count for label, count in stats.items() if label.endswith("Listing")
    )
    downloads = sum(count for label, count in stats.items() if label.endswith("Recording"))
    reports = sum(
        count
        for label, count in stats.items()
        if label not in SEQUENTIAL_LABELS
        and not label.endswith(("Listing", "Recording"))
        and label not in ("connections", "health")
    )
    report_bytes = max(carried - sequential_bytes - download_bytes, 0)
    return Work(sequential, reports, downloads, report_bytes, download_bytes)


def main() -> None:
    from btic.sim import SimulatedAppliance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--recording-size", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--bandwidth", type=float, default=20e6)
    parser.add_argument("--concurrency", type=int, default=4, help="download_concurrency")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ratios, walls, bounds = [], [], []
    for _ in range(args.repeat):
        with (
            tempfile.TemporaryDirectory(prefix="btic-wan-") as tmp,
            SimulatedAppliance(
                "rs",
                tls=False,
                sessions=args.sessions,
                live_sessions=0,
                presentations=0,
                seed=9,
                recording_size=args.recording_size,
                faults=f"latency={args.latency},bandwidth={args.bandwidth}",
            ) as sim,
        ):
            root = Path(tmp)
            config = root / "btic.toml"
            config.write_text(
                sim.site_toml("sim")
                + f"""first_run_since = "all"
download_concurrency = {args.concurrency}
[destinations.archive]
plugin = "filesystem"
directory = "{root / "archive"}"
[schedules.first]
every = "1d"
[[schedules.first.transfers]]
site = "sim"
destinations = ["archive"]
data = ["session", "recording"]
"""
            )
            config.chmod(0o600)
            env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
            sim.stats.clear()
            link = sim.faults.link
            assert link is not None
            carried_before = link.carried
            started = time.perf_counter()
            done = subprocess.run(
                [BTIC, "sync", "--all", "-q", "--config", str(config)],
                capture_output=True,
                text=True,
                env=env,
            )
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(done.stderr[-2000:])
            stats = dict(sim.stats)
            recordings = sum(n for label, n in stats.items() if label.endswith("Recording"))
            work = work_of(
                stats,
                link.carried - carried_before,
                download_bytes=recordings * args.recording_size,
            )
            bound = lower_bound(
                work, latency=args.latency, bandwidth=args.bandwidth, concurrency=args.concurrency
            )
            walls.append(wall)
            bounds.append(bound)
            ratios.append(bound / wall)
    print(
        f"{args.sessions} sessions, latency {args.latency * 1000:.0f} ms, "
        f"link {args.bandwidth / 1e6:.0f} MB/s, {args.concurrency} downloads at once; {work}"
    )
    print(
        f"btic first sync: min {min(walls):.2f} s  median {statistics.median(walls):.2f} s; "
        f"lower bound {statistics.median(bounds):.2f} s; bound / btic: min {min(ratios):.2f} "
        f"median {statistics.median(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
