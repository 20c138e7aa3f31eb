"""An incremental sync with nothing new, over a ledger of 1,000,000 delivered items.

Times `btic sync` (the whole command, interpreter start-up included) in two cases:

* steady state: a ledger of --ledger delivered sessions (the appliance's own
  1,000 and synthetic ones for the rest, as years of history leave) and
  watermarks at the appliance's present, as after any run;
* worst case: no watermarks (a lost state row, or first_run_since = "all"
  re-listing everything): an appliance of --relisted sessions, all in the
  ledger, every listed lsid diffed against it.

The baseline of each is the same run over a ledger of --baseline items; the
ratio shows how the cost grows with the ledger. Each is run --repeat times;
min and median are printed. Appliance calls are counted by the simulator.

    .venv/bin/python benchmarks/incremental_sync.py [--ledger 1000000 --relisted 100000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert

from btic.sim import SimulatedAppliance
from btic.state import StateStore, deliveries, now


def prepare(workdir: Path, sim: SimulatedAppliance, ledger: int, with_watermark: bool) -> Path:
    config = workdir / "btic.toml"
    config.write_text(
        sim.site_toml("sim")
        + f"""first_run_since = "all"
[destinations.archive]
plugin = "filesystem"
directory = "{workdir / "archive"}"
[schedules.often]
every = "15m"
[[schedules.often.transfers]]
site = "sim"
destinations = ["archive"]
data = ["session"]
"""
    )
    config.chmod(0o600)
    store = StateStore(f"sqlite:///{workdir / 'btic-state.db'}")
    moment = now()
    lsids = [s.lsid for s in sim.dataset.all() if s.report == "support"]
    lsids += [f"history-{n:09d}" for n in range(max(0, ledger - len(lsids)))]
    rows = [
        {
            "site": "sim",
            "destination": "archive",
            "data_type": "session",
            "item_key": lsid,
            "status": "delivered",
            "attempts": 0,
            "created_at": moment,
            "updated_at": moment,
            "run_id": "seed",
            "location": f"/x/{lsid}.xml",
        }
        for lsid in lsids
    ]
    with store.engine.begin() as connection:
        for start in range(0, len(rows), 10_000):
            connection.execute(insert(deliveries), rows[start : start + 10_000])
    if with_watermark:
        store.advance_watermark(
            "sim", "session", "archive", datetime.fromtimestamp(sim.now(), timezone.utc)
        )
    store.close()
    return config


def timed_sync(config: Path, sim: SimulatedAppliance) -> tuple[float, int]:
    btic = str(Path(sys.executable).with_name("btic"))
    before = sum(v for k, v in sim.stats.items() if k != "connections")
    started = time.perf_counter()
    # --all: after the first run the schedule is not due again for 15 minutes.
    subprocess.run(
        [btic, "sync", "--all", "--config", str(config)], check=True, capture_output=True
    )
    calls = sum(v for k, v in sim.stats.items() if k != "connections") - before
    return time.perf_counter() - started, calls


def measure(
    sessions: int, ledger: int, with_watermark: bool, repeat: int
) -> tuple[list[float], int]:
    """Seconds of each of ``repeat`` syncs, sorted, and the most appliance calls one made.

    Without watermarks every run starts from a fresh state (a run sets them)."""
    runs = []
    with SimulatedAppliance(
        "rs", sessions=sessions, presentations=0, live_sessions=0, history_seconds=30 * 86400
    ) as sim:
        with tempfile.TemporaryDirectory() as tmp:
            config = prepare(Path(tmp), sim, ledger, with_watermark)
            runs.append(timed_sync(config, sim))
            while with_watermark and len(runs) < repeat:
                runs.append(timed_sync(config, sim))
        while len(runs) < repeat:
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(timed_sync(prepare(Path(tmp), sim, ledger, with_watermark), sim))
    return sorted(seconds for seconds, _ in runs), max(calls for _, calls in runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ledger", type=int, default=1_000_000)
    parser.add_argument("--relisted", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = (
        ("steady state (watermarks set)", True, 1_000, args.ledger),
        ("worst case (no watermarks, all re-listed)", False, args.relisted, args.relisted),
    )
    for label, with_watermark, sessions, ledger in cases:
        base, base_calls = measure(args.baseline, args.baseline, with_watermark, args.repeat)
        big, big_calls = measure(sessions, ledger, with_watermark, args.repeat)
        print(f"{label}:")
        for size, seconds, calls in ((args.baseline, base, base_calls), (ledger, big, big_calls)):
            print(
                f"  ledger of {size:>9,}: min {seconds[0]:5.2f} s, "
                f"median {statistics.median(seconds):5.2f} s, {calls} appliance calls"
            )
        print(f"  ratio (medians): {statistics.median(big) / statistics.median(base):.2f}")


if __name__ == "__main__":
    main()
