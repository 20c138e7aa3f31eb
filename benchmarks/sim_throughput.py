"""Simulated appliance recording throughput: the ceiling for download benchmarks.

Serves one recording of --megabytes MB and fetches it with curl (a C client:
what the server can give) and with httpx streaming (what a Python client
gets), over HTTPS and plain HTTP, printing MB/s of each.

    .venv/bin/python benchmarks/sim_throughput.py [--megabytes 1024]
"""

from __future__ import annotations

import argparse
import shutil
import ssl
import subprocess
import time

import httpx

from btic.sim import SimulatedAppliance


def fetch_httpx(sim: SimulatedAppliance, token: str, lsid: str) -> float:
    started = time.perf_counter()
    size = 0
    verify = ssl.create_default_context(cafile=str(sim.ca_path)) if sim.tls else False
    with (
        httpx.Client(verify=verify, timeout=60) as client,
        client.stream(
            "GET",
            sim.url + "/api/reporting",
            headers={"Authorization": f"Bearer {token}"},
            params={"generate_report": "SupportSessionRecording", "lsid": lsid},
        ) as response,
    ):
        for chunk in response.iter_raw(1024 * 1024):
            size += len(chunk)
    return size / (time.perf_counter() - started) / 1024 / 1024


def fetch_curl(sim: SimulatedAppliance, token: str, lsid: str) -> float | None:
    if not shutil.which("curl"):
        return None
    url = f"{sim.url}/api/reporting?generate_report=SupportSessionRecording&lsid={lsid}"
    args = [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{speed_download}",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if sim.tls:
        args += ["--cacert", str(sim.ca_path)]
    result = subprocess.run([*args, url], capture_output=True, text=True, check=True)
    return float(result.stdout) / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=1024)
    args = parser.parse_args()
    for tls in (True, False):
        with SimulatedAppliance(
            "rs", sessions=2, live_sessions=0, tls=tls, recording_size=args.megabytes * 1024 * 1024
        ) as sim:
            token = sim.tokens.grant()
            lsid = next(s.lsid for s in sim.dataset.all() if s.has_recording)
            curl = fetch_curl(sim, token, lsid)
            python = fetch_httpx(sim, token, lsid)
            label = "HTTPS" if tls else "HTTP "
            curl_text = f"{curl:7.0f} MB/s" if curl is not None else "   (no curl)"
            print(
                f"{label} {args.megabytes} MB recording: curl {curl_text}   httpx {python:7.0f} "
                "MB/s"
            )


if __name__ == "__main__":
    main()
