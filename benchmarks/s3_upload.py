"""Uploading recordings to S3: btic's S3 destination against boto3's own
``upload_file`` (its transfer manager) of the same files to the same server.

Starts moto's S3 server (``moto[server]``) on loopback, writes --files spool
files of --megabytes each, then, --repeat times, uploads them all with each
method into an empty bucket, in the same order, one file at a time (btic
delivers one recording at a time per download thread):

* ``boto3``: ``client.upload_file`` with boto3's default ``TransferConfig``
  (8 MiB parts, 10 threads);
* ``boto3+sha256``: the same, asking for a SHA-256 checksum as btic sends;
* ``btic``: the destination's ``on_recording`` (HEAD for conflicts, an upload
  marker, parts of ``part_size_mb`` with ``max_concurrency`` in flight, a
  SHA-256 per part and the composite compared, the item's metadata).

Prints MB/s (min and median) and the ratio, then the peak RSS of a child
process delivering one --big-megabytes recording through btic.

    .venv/bin/python benchmarks/s3_upload.py [--files 4] [--megabytes 128] [--repeat 3]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "plugins" / "s3"))
from s3_server import moto_server

#: Options of the btic destination (its defaults when empty).
TUNING: dict[str, int] = {}

CHILD = r"""
import json, re, sys
from pathlib import Path
from btic.testing.helpers import SITE, ConfiguredDestination, sample_session
from btic.types import Recording
url, bucket, path, size, sha256 = sys.argv[1:6]
path, size = Path(path), int(size)
session = sample_session("big")
recording = Recording(site=SITE, lsid=session.lsid, kind="session", instance=None,
                      extension="flv", size=size, sha256=sha256, path=path, session=session)
options = {"bucket": bucket, "endpoint_url": url, "region": "us-east-1",
           "access_key_id": "testing", "secret_access_key": "testing"}
destination = ConfiguredDestination("s3", options, path.parent)


def peak_mb():
    # VmHWM starts afresh at exec (ru_maxrss keeps the forking parent's peak).
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


destination.check()  # the client and boto3's model loaded: the baseline
before = peak_mb()
destination.recording(recording)
print(json.dumps({"peak_rss_mb": peak_mb(), "before_mb": before}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--megabytes", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-megabytes", type=int, default=1024)
    args = parser.parse_args()
    from btic.testing.helpers import ConfiguredDestination, make_recording, sample_session

    with tempfile.TemporaryDirectory(prefix="btic-bench-s3-") as scratch_dir, moto_server() as s3:
        scratch = Path(scratch_dir)
        size = args.megabytes * 1024 * 1024
        recordings = [
            make_recording(scratch / f"r{i}.flv", size, sample_session(f"lsid{i:04d}"))
            for i in range(args.files)
        ]
        total_mb = args.files * args.megabytes
        client = s3.client()
        speeds: dict[str, list[float]] = {"boto3": [], "boto3+sha256": [], "btic": []}
        for run in range(args.repeat):
            for method in speeds:
                bucket = s3.bucket(f"bench-{method.replace('+', '-')}-{run}")
                # Both clients made (and boto3's service model loaded) before the clock
                # starts: a run makes its client once.
                destination = ConfiguredDestination("s3", s3.options(bucket, **TUNING), scratch)
                destination.check()
                extra = {"ChecksumAlgorithm": "SHA256"} if method == "boto3+sha256" else None
                started = time.perf_counter()
                for recording in recordings:
                    if method == "btic":
                        destination.recording(recording)
                    else:
                        client.upload_file(
                            str(recording.path), bucket, recording.path.name, ExtraArgs=extra
                        )
                elapsed = time.perf_counter() - started
                speeds[method].append(total_mb / elapsed)
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for entry in page.get("Contents", ()):  # moto holds objects in memory
                        client.delete_object(Bucket=bucket, Key=entry["Key"])
        print(f"{args.files} files x {args.megabytes} MB, {args.repeat} runs, moto on loopback")
        print(f"{'method':<13} {'min MB/s':>9} {'median MB/s':>12}")
        for method, values in speeds.items():
            print(f"{method:<13} {min(values):>9.0f} {statistics.median(values):>12.0f}")
        btic_median = statistics.median(speeds["btic"])
        for baseline in ("boto3", "boto3+sha256"):
            ratio = btic_median / statistics.median(speeds[baseline])
            print(f"ratio btic / {baseline} (medians): {ratio:.2f}")
        for path in scratch.glob("r*.flv"):
            path.unlink()
        bucket = s3.bucket("bench-big")
        big = make_recording(scratch / "big.flv", args.big_megabytes * 1024 * 1024)
        done = subprocess.run(
            [sys.executable, "-c", CHILD, s3.url, bucket, str(big.path), str(big.size), big.sha256],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        figures = json.loads(done.stdout)
        print(
            f"one {args.big_megabytes} MB recording through btic: peak RSS "
            f"{figures['peak_rss_mb']:.0f} MB ({figures['before_mb']:.0f} MB with the client "
            "made, before the upload)"
        )


if __name__ == "__main__":
    main()
