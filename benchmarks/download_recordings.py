"""Recording download: `btic transfer` against curl on the same simulator, same run.

Serves --count recordings of --megabytes MB each over HTTPS, fetches them all
with curl (4 at a time, like btic's default concurrency) as the baseline, then
runs `btic transfer --type recording` into a directory, and prints MB/s of
each, the ratio, and btic's peak RSS. Then one recording of --large-megabytes
(2 GB by default) to show peak RSS does not follow file size.

    .venv/bin/python benchmarks/download_recordings.py \
        [--count 8 --megabytes 128 --large-megabytes 2048]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from btic.sim import SimulatedAppliance

WRAPPER = r"""
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(json.dumps({"code": code, "seconds": time.perf_counter() - started,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def btic_transfer(sim: SimulatedAppliance, workdir: Path) -> dict:
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
    command = [
        btic,
        "transfer",
        "--config",
        str(config),
        "--site",
        "sim",
        "--dest",
        "archive",
        "--type",
        "recording",
        "--since",
        "30d",
    ]
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, check=True
    )
    figures = json.loads(result.stdout)
    assert figures["code"] == 0, "btic transfer failed"
    figures["bytes"] = sum(p.stat().st_size for p in (workdir / "archive").rglob("*.flv"))
    return figures


def curl_all(sim: SimulatedAppliance, lsids: list[str], workdir: Path) -> float:
    token = sim.tokens.grant()
    out = workdir / "curl"
    out.mkdir()

    def fetch(lsid: str) -> None:
        url = f"{sim.url}/api/reporting?generate_report=SupportSessionRecording&lsid={lsid}"
        subprocess.run(
            [
                "curl",
                "-sf",
                "--cacert",
                str(sim.ca_path),
                "-H",
                f"Authorization: Bearer {token}",
                "-o",
                str(out / f"{lsid}.flv"),
                url,
            ],
            check=True,
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(fetch, lsids))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--megabytes", type=int, default=128)
    parser.add_argument("--large-megabytes", type=int, default=2048)
    args = parser.parse_args()
    if not shutil.which("curl"):
        sys.exit("curl is needed for the baseline")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with SimulatedAppliance(
            "rs",
            sessions=args.count * 4 // 3 + 2,
            live_sessions=0,
            history_seconds=86400,
            presentations=0,
            recording_size=args.megabytes * 1024 * 1024,
        ) as sim:
            lsids = [
                s.lsid
                for s in sim.dataset.all()
                if s.has_recording and s.closed_at(sim.now() - 120)
            ]
            total_mb = len(lsids) * args.megabytes
            curl_seconds = curl_all(sim, lsids, workdir)
            figures = btic_transfer(sim, workdir)
        assert figures["bytes"] == total_mb * 1024 * 1024
        print(f"{len(lsids)} recordings x {args.megabytes} MB over HTTPS, 4 at a time")
        print(f"curl (baseline)  {total_mb / curl_seconds:7.0f} MB/s")
        print(
            f"btic transfer    {total_mb / figures['seconds']:7.0f} MB/s  (whole command: "
            "start-up, listing, "
            f"reports, fsync)  peak RSS {figures['peak_rss_mb']:.0f} MB"
        )
        print(f"ratio btic / curl: {curl_seconds / figures['seconds']:.2f}")
        shutil.rmtree(workdir / "archive")
        shutil.rmtree(workdir / "curl")
        large_dir = workdir / "large"  # its own state database: the seed repeats lsids
        large_dir.mkdir()
        with SimulatedAppliance(
            "rs",
            sessions=1,
            live_sessions=0,
            presentations=0,
            history_seconds=86400,
            recording_size=args.large_megabytes * 1024 * 1024,
        ) as sim:
            large = btic_transfer(sim, large_dir)
        assert large["bytes"] == args.large_megabytes * 1024 * 1024
        print(
            f"one {args.large_megabytes} MB recording: "
            f"{args.large_megabytes / large['seconds']:.0f} MB/s, "
            f"btic peak RSS {large['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
