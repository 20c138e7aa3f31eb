"""Recording download: `btic transfer` against curl on the same simulator, same run.

For each transport (HTTPS, HTTP) the simulated appliance serves recordings of
--megabytes MB each (about --count of them); curl fetches all of them, 4 at
a time like btic's default `download_concurrency`, as the baseline, then
`btic transfer --type recording` fetches the same ones into a directory (the
whole command: start-up, token, listing, reports, downloads with sha256, the
file-system plugin's fsync and no-clobber placement). A second baseline fsyncs
each file curl wrote, as a durable delivery must; a third also pipes the body
through sha256sum as it arrives, as btic hashes what it downloads. They alternate
--repeat times, each into a fresh directory that is removed afterwards;
prints min and median MB/s of each, the ratios, and btic's peak RSS. Then one
recording of --large-megabytes (2 GB by default), to show that btic's peak
RSS does not follow a file's size.

With --link MB/s the simulator sends every answer through one shared link of
that speed (its ``bandwidth`` setting), as an appliance behind a real network
port would: every case then fetches through the same wire, and the figures
say how close each comes to it (a 1 GbE port carries about 119 MiB/s).

    .venv/bin/python benchmarks/download_recordings.py \
        [--count 8 --megabytes 512 --repeat 3 --transport https,http --large-megabytes 2048]
        [--link 119] [--netns-rate 1gbit]

--netns-rate runs it all in a private network namespace whose loopback is
shaped by ``tc qdisc ... tbf`` (a real link's token bucket, in the kernel).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from btic.sim import SimulatedAppliance

MIB = 1024 * 1024
WRAPPER = r"""
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(json.dumps({"code": code, "seconds": time.perf_counter() - started,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def remove(directory: Path) -> None:
    """Delete a run's files and let the file system settle before the next run is
    timed: with online discard (the ``discard`` mount option) a deletion's TRIMs go
    out with the next journal commit, which would land in whichever case fsyncs next."""
    shutil.rmtree(directory)
    os.sync()


def appliance(tls: bool, sessions: int, megabytes: int, link: float = 0) -> SimulatedAppliance:
    """The simulated appliance; ``link``: MiB/s of the wire its answers share (0: none)."""
    return SimulatedAppliance(
        "rs",
        tls=tls,
        sessions=sessions,
        live_sessions=0,
        history_seconds=86400,
        presentations=0,
        recording_size=megabytes * MIB,
        faults=f"bandwidth={link * MIB}" if link else None,
    )


def btic_transfer(sim: SimulatedAppliance, workdir: Path) -> dict:
    """Run `btic transfer` in a fresh configuration, archive and state database."""
    workdir.mkdir(parents=True)
    config = workdir / "btic.toml"
    config.write_text(
        sim.site_toml("sim")
        + f"""
[destinations.archive]
plugin = "filesystem"
directory = "{workdir / "archive"}"
"""
    )
    config.chmod(0o600)
    btic = str(Path(sys.executable).with_name("btic"))
    command = [btic, "transfer", "--config", str(config), "--site", "sim", "--dest", "archive"]
    command += ["--type", "recording", "--since", "30d"]

    def timed() -> dict:
        result = subprocess.run(
            [sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, check=True
        )
        figures: dict = json.loads(result.stdout)
        assert figures["code"] == 0, "btic transfer failed"
        return figures

    figures = timed()
    figures["bytes"] = sum(p.stat().st_size for p in (workdir / "archive").rglob("*.flv"))
    # The same command again, with every recording already delivered: start-up,
    # token, listing and the ledger, without a body. Its time is the part of the
    # first run that does not depend on how many bytes there were.
    figures["fixed_seconds"] = timed()["seconds"]
    remove(workdir)
    return figures


def curl_all(
    sim: SimulatedAppliance, lsids: list[str], workdir: Path, durable: bool, hashed: bool = False
) -> float:
    """Seconds for curl to fetch every recording, 4 at a time.

    :param durable: fsync each file once written (btic's deliveries are durable,
        and a benchmark that removes its files before the kernel writes them back
        would otherwise compare btic's disk writes with none).
    :param hashed: pipe the body through ``tee`` into ``sha256sum`` as it arrives,
        as btic computes each download's SHA-256 for its ledger.
    """
    token = sim.tokens.grant()
    workdir.mkdir(parents=True)
    trust = ["--cacert", str(sim.ca_path)] if sim.tls else []

    def fetch(lsid: str) -> None:
        url = f"{sim.url}/api/reporting?generate_report=SupportSessionRecording&lsid={lsid}"
        target = workdir / f"{lsid}.flv"
        curl = ["curl", "-sf", *trust, "-H", f"Authorization: Bearer {token}"]
        if hashed:
            pipeline = f"{shlex.join([*curl, url])} | tee {shlex.quote(str(target))} | sha256sum"
            subprocess.run(
                ["bash", "-o", "pipefail", "-c", pipeline], check=True, capture_output=True
            )
        else:
            subprocess.run([*curl, "-o", str(target), url], check=True)
        if durable:
            descriptor = os.open(target, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(fetch, lsids))
    seconds = time.perf_counter() - started
    remove(workdir)
    return seconds


def measure(tls: bool, args: argparse.Namespace, workdir: Path) -> None:
    with appliance(tls, args.count * 4 // 3 + 2, args.megabytes, args.link) as sim:
        lsids = [
            s.lsid for s in sim.dataset.all() if s.has_recording and s.closed_at(sim.now() - 120)
        ]
        total_mb = len(lsids) * args.megabytes
        curl: list[float] = []
        durable: list[float] = []
        hashed: list[float] = []
        btic: list[float] = []
        fixed: list[float] = []
        rss: list[float] = []
        for repetition in range(args.repeat):
            curl.append(curl_all(sim, lsids, workdir / f"curl-{repetition}", durable=False))
            durable.append(curl_all(sim, lsids, workdir / f"fsync-{repetition}", durable=True))
            hashed.append(
                curl_all(sim, lsids, workdir / f"sha-{repetition}", durable=True, hashed=True)
            )
            figures = btic_transfer(sim, workdir / f"btic-{repetition}")
            assert figures["bytes"] == total_mb * MIB, "btic did not fetch every byte"
            btic.append(figures["seconds"])
            fixed.append(figures["fixed_seconds"])
            rss.append(figures["peak_rss_mb"])
    name = "HTTPS" if tls else "HTTP"
    wire = f", through a {args.link:g} MB/s link" if args.link else ""
    print(
        f"{name}: {len(lsids)} recordings x {args.megabytes} MB, 4 at a time, "
        f"{args.repeat} runs{wire}"
    )
    cases = (
        ("curl", curl),
        ("curl + fsync", durable),
        ("curl | tee | sha256sum + fsync", hashed),
        ("btic transfer", btic),
    )
    for who, seconds in cases:
        print(
            f"  {who:30s} best {total_mb / min(seconds):6.0f} MB/s  "
            f"median {total_mb / statistics.median(seconds):6.0f} MB/s"
        )
    print(f"  btic peak RSS {max(rss):.0f} MB")
    # btic's bodies alone: each run less the same command's fixed cost (its rerun
    # with nothing to fetch), so that the wire's figure is not the start-up's.
    bodies = [whole - once for whole, once in zip(btic, fixed, strict=True)]
    print(
        f"  btic fixed cost (rerun, nothing to fetch) median {statistics.median(fixed):.2f} s; "
        f"bodies alone best {total_mb / min(bodies):6.0f} MB/s  "
        f"median {total_mb / statistics.median(bodies):6.0f} MB/s"
    )
    for who, seconds in cases[:3]:
        print(
            f"  ratio btic / {who}: median "
            f"{statistics.median(seconds) / statistics.median(btic):.2f}, "
            f"best {min(seconds) / min(btic):.2f}; "
            f"bodies alone median {statistics.median(seconds) / statistics.median(bodies):.2f}"
        )
    if args.link:
        for who, seconds in cases:
            print(
                f"  {who} / the link: median "
                f"{total_mb / statistics.median(seconds) / args.link:.2f}, "
                f"best {total_mb / min(seconds) / args.link:.2f}"
            )


NETNS_ENV = "BTIC_BENCH_NETNS"


def in_namespace(rate: str) -> None:
    """Run this script again inside a new network namespace whose ``lo`` is shaped
    to ``rate`` (a token bucket, as a port of that speed is): the simulator, curl
    and btic then all talk through the same shaped wire. Says why and returns
    where a namespace cannot be made."""
    name = f"btic-bench-{os.getpid()}"
    setup = [
        ["ip", "netns", "add", name],
        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
        # burst: 4 MB, several 64 KB loopback packets; latency: how long a packet may queue
        ["ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "tbf",
         "rate", rate, "burst", "4mb", "latency", "50ms"],
    ]  # fmt: skip
    try:
        for command in setup:
            subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        print(f"skipped: no shaped network namespace here ({detail.strip()})")
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        return
    print(f"in network namespace {name}, loopback shaped to {rate} (tc tbf)")
    try:
        subprocess.run(
            ["ip", "netns", "exec", name, sys.executable, *sys.argv],
            env={**os.environ, NETNS_ENV: name},
            check=False,
        )
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--transport", default="https,http")
    parser.add_argument("--large-megabytes", type=int, default=2048)
    parser.add_argument(
        "--link", type=float, default=0, help="MB/s of the wire the simulator sends through"
    )
    parser.add_argument(
        "--netns-rate",
        default="",
        help="run everything in a private network namespace whose loopback is shaped to "
        "this rate by tc tbf (1gbit, 2500mbit); needs root and iproute2",
    )
    args = parser.parse_args()
    if args.netns_rate and NETNS_ENV not in os.environ:
        in_namespace(args.netns_rate)
        return
    if not shutil.which("curl"):
        sys.exit("curl is needed for the baseline")
    transports = [t.strip().lower() for t in args.transport.split(",") if t.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.sync()  # whatever earlier work left unwritten goes out before the first case
        for transport in transports:
            measure(transport == "https", args, workdir / transport)
        if args.large_megabytes:
            with appliance(True, 1, args.large_megabytes, args.link) as sim:
                large = btic_transfer(sim, workdir / "large")
            assert large["bytes"] == args.large_megabytes * MIB
            print(
                f"one {args.large_megabytes} MB recording over HTTPS: "
                f"{args.large_megabytes / large['seconds']:.0f} MB/s, "
                f"btic peak RSS {large['peak_rss_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
