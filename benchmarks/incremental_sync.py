"""An incremental sync with nothing new, over a ledger of 100,000 delivered sessions.

Builds an appliance with --sessions closed sessions and a ledger in which
every one of them is delivered, then times `btic sync` twice:

* steady state: watermarks at the appliance's present, as after any run;
* worst case: no watermarks (a lost state row, or first_run_since = "all"
  re-listing everything), so every listed lsid is diffed against the ledger.

The baseline is the same run over a ledger of --baseline sessions; the ratio
shows how the cost grows with the ledger. Appliance calls are counted by the
simulator.

    .venv/bin/python benchmarks/incremental_sync.py [--sessions 100000 --baseline 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert

from btic.sim import SimulatedAppliance
from btic.state import StateStore, deliveries, now


def prepare(workdir: Path, sim: SimulatedAppliance, with_watermark: bool) -> Path:
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
    rows = [
        {
            "site": "sim",
            "destination": "archive",
            "data_type": "session",
            "item_key": s.lsid,
            "status": "delivered",
            "attempts": 0,
            "created_at": moment,
            "updated_at": moment,
            "run_id": "seed",
            "location": f"/x/{s.lsid}.xml",
        }
        for s in sim.dataset.all()
        if s.report == "support"
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
    subprocess.run([btic, "sync", "--config", str(config)], check=True, capture_output=True)
    calls = sum(v for k, v in sim.stats.items() if k != "connections") - before
    return time.perf_counter() - started, calls


def measure(sessions: int, with_watermark: bool) -> tuple[float, int]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        SimulatedAppliance(
            "rs", sessions=sessions, presentations=0, live_sessions=0, history_seconds=30 * 86400
        ) as sim,
    ):
        config = prepare(Path(tmp), sim, with_watermark)
        return timed_sync(config, sim)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    args = parser.parse_args()
    for label, with_watermark in (
        ("steady state (watermarks set)", True),
        ("worst case (no watermarks)", False),
    ):
        base_seconds, base_calls = measure(args.baseline, with_watermark)
        big_seconds, big_calls = measure(args.sessions, with_watermark)
        print(f"{label}:")
        print(
            f"  ledger of {args.baseline:>7,}: {base_seconds:6.2f} s, {base_calls} appliance calls"
        )
        print(f"  ledger of {args.sessions:>7,}: {big_seconds:6.2f} s, {big_calls} appliance calls")
        print(f"  ratio: {big_seconds / base_seconds:.2f}")


if __name__ == "__main__":
    main()
