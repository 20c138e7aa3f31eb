"""Scaling out: one round over many appliances with 1, 2 and 4 Celery workers.

--appliances simulated appliances (RS, --sessions closed sessions each with
their recordings, every answer --latency seconds late, as over a WAN) are
archived into one directory, with a private PostgreSQL as the state database
and a private redis-server as the broker. One round is one schedule with one
transfer per appliance, run from scratch (a new state database and archive):

* baseline: `btic run --once` with the local executor, the one-process setup
  (it runs the schedule's transfers at the same time, one thread each);
* `btic run --once --executor celery` enqueueing one task per appliance, with
  1, 2 and 4 `btic worker` processes of --concurrency threads each already
  running; the round ends when every task is finished.

Each is run --repeat times; min and median wall times are printed, and each
worker count's speed-up over the baseline (median / median). The appliances
run in a process of their own, so their work does not share the benchmark's
interpreter.

    .venv/bin/python benchmarks/celery_scale.py --appliances 40 --latency 0.05
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy

from btic.testing.servers import PostgresServer, RedisServer

BTIC = str(Path(sys.executable).with_name("btic"))

#: Serves the appliances from a process of its own; prints their [sites] TOML.
APPLIANCES = r"""
import json, sys, time
from btic.sim import SimulatedAppliance
count, sessions, latency = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sims = [
    SimulatedAppliance("rs", tls=False, sessions=sessions, seed=500 + i, live_sessions=0,
                       recording_size=128 * 1024, faults=f"latency={latency}").start()
    for i in range(count)
]
print(json.dumps([sim.site_toml(f"a{i}") for i, sim in enumerate(sims)]), flush=True)
sys.stdin.read()  # until the benchmark closes it
"""


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}


def write_config(root: Path, sites: list[str], state: str, broker: str, per_site: int) -> Path:
    transfers = "".join(
        f'[[schedules.round.transfers]]\nsite = "a{i}"\ndestinations = ["archive"]\n'
        'data = ["session", "recording"]\n'
        for i in range(len(sites))
    )
    path = root / "btic.toml"
    path.write_text(
        f'[state]\nurl = "{state}"\n\n'
        + (
            f'[executor]\nbroker_url = "{broker}"\ntasks_per_site = {per_site}\n'
            'busy_retry = "1s"\n\n'
            if broker
            else ""
        )
        + "".join(site + 'first_run_since = "all"\nsettle_delay = "0s"\n' for site in sites)
        + f'\n[logging]\ndirectory = "{root / "logs"}"\nlevel = "info"\n\n'
        f'[destinations.archive]\nplugin = "filesystem"\ndirectory = "{root / "archive"}"\n\n'
        f'[schedules.round]\nevery = "1d"\nat = "00:00"\n{transfers}'
    )
    path.chmod(0o600)
    return path


def tasks_finished(state: str, count: int) -> bool:
    engine = sqlalchemy.create_engine(state)
    try:
        with engine.connect() as connection:
            if not sqlalchemy.inspect(connection).has_table("btic_tasks"):
                return False
            rows = connection.execute(sqlalchemy.text("select status from btic_tasks")).all()
    finally:
        engine.dispose()
    return len(rows) == count and all(row.status in ("ok", "failed") for row in rows)


def delivered(state: str) -> int:
    engine = sqlalchemy.create_engine(state)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sqlalchemy.text("select count(*) from btic_deliveries where status='delivered'")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def local_round(root: Path, sites: list[str], postgres: PostgresServer, broker: str) -> tuple:
    state = postgres.new_database()
    config = write_config(root, sites, state, broker, per_site=1)
    started = time.perf_counter()
    subprocess.run(
        [BTIC, "run", "--once", "--config", str(config)],
        check=True,
        capture_output=True,
        env=environment(),
    )
    return time.perf_counter() - started, delivered(state)


def celery_round(
    root: Path,
    sites: list[str],
    postgres: PostgresServer,
    redis: RedisServer,
    workers: int,
    concurrency: int,
) -> tuple:
    redis.flush()
    state = postgres.new_database()
    config = write_config(root, sites, state, redis.url, per_site=1)
    logs = [root / f"worker{n}.log" for n in range(workers)]
    processes = []
    for n, log in enumerate(logs):
        with log.open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [
                        *(BTIC, "worker", "--config", str(config)),
                        *("-c", str(concurrency), "-n", f"w{n}@%h"),
                    ],
                    stdout=out,
                    stderr=out,
                    env=environment(),
                )
            )
    try:
        while not all("ready." in log.read_text() for log in logs):
            time.sleep(0.1)
        started = time.perf_counter()
        subprocess.run(
            [BTIC, "run", "--once", "--executor", "celery", "--config", str(config)],
            check=True,
            capture_output=True,
            env=environment(),
        )
        while not tasks_finished(state, len(sites)):
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=120)
    return seconds, delivered(state)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appliances", type=int, default=40)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=10, help="threads per worker")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    appliances = subprocess.Popen(
        [
            *(sys.executable, "-c", APPLIANCES),
            *(str(args.appliances), str(args.sessions), str(args.latency)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert appliances.stdout is not None and appliances.stdin is not None
    sites = json.loads(appliances.stdout.readline())
    results: dict[str, list[float]] = {}
    items: set[int] = set()
    try:
        with PostgresServer.started() as postgres, RedisServer.started() as redis:
            for _ in range(args.repeat):
                rounds = [("btic run (local)", lambda root: local_round(root, sites, postgres, ""))]
                for count in (int(n) for n in args.workers.split(",")):
                    rounds.append(
                        (
                            f"{count} worker(s) x {args.concurrency}",
                            lambda root, count=count: celery_round(
                                root, sites, postgres, redis, count, args.concurrency
                            ),
                        )
                    )
                for label, round_ in rounds:
                    root = Path(tempfile.mkdtemp(prefix="btic-scale-"))
                    try:
                        seconds, count = round_(root)
                    finally:
                        shutil.rmtree(root, ignore_errors=True)
                    results.setdefault(label, []).append(seconds)
                    items.add(count)
    finally:
        appliances.stdin.close()
        appliances.wait(timeout=60)
    print(
        f"{args.appliances} appliances x {args.sessions} sessions (+ recordings), "
        f"latency {args.latency * 1000:.0f} ms; items delivered per round: {sorted(items)}"
    )
    baseline = statistics.median(results["btic run (local)"])
    for label, times in results.items():
        median = statistics.median(times)
        print(
            f"  {label:22s} min {min(times):6.2f} s  median {median:6.2f} s  "
            f"speed-up {baseline / median:4.2f}"
        )


if __name__ == "__main__":
    main()
