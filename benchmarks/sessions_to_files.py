"""Session reports into a directory: `btic transfer` and `btic import-xml` against the
floor for durable per-file delivery.

The simulated appliance serves --sessions closed RS sessions (over HTTP, so the
simulator's TLS is not what is measured). The baseline fetches the same
SupportSession report in one request, splits it with lxml's iterparse and
writes each session's standalone XML with write + fsync + rename (the least a
durable per-file delivery does), in this process. btic runs as the user runs
it: `btic transfer --type session` (listing, reports in lsid batches, parsing
into typed models, naming, no-clobber placement, the ledger) into a fresh
directory and state database, and `btic import-xml` of the saved report.
--prefill puts that many files in the target directory first, to show whether
the cost per session depends on the directory's size. For btic it also prints
the CPU time (user + system) its process used per session, which the disk's
noise does not move; BENCH_DIR=/dev/shm puts everything on a tmpfs, where the
wall time is CPU too.

    .venv/bin/python benchmarks/sessions_to_files.py --sessions 20000 --repeat 3
    .venv/bin/python benchmarks/sessions_to_files.py --sessions 2000 --prefill 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from lxml import etree

from btic.sim import SimulatedAppliance

BTIC = str(Path(sys.executable).with_name("btic"))


def fetch_report(sim: SimulatedAppliance, target: Path) -> None:
    with httpx.Client(base_url=sim.url, timeout=600) as client:
        token = client.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(sim.client_id, sim.client_secret),
        ).json()["access_token"]
        since = int(sim.now()) - 7 * 86400
        params = {"generate_report": "SupportSession", "end_time": str(since), "duration": "0"}
        with (
            client.stream(
                "GET", "/api/reporting", params=params, headers={"Authorization": f"Bearer {token}"}
            ) as response,
            target.open("wb") as out,
        ):
            for chunk in response.iter_bytes(1 << 20):
                out.write(chunk)


def baseline(sim: SimulatedAppliance, directory: Path, spool: Path) -> int:
    """Fetch, split, write + fsync + rename each session: the floor."""
    fetch_report(sim, spool)
    count = 0
    for _, element in etree.iterparse(
        str(spool), events=("end",), tag="{*}session", resolve_entities=False, no_network=True
    ):
        lsid = element.get("lsid") or str(count)
        data = etree.tostring(element)
        final = directory / f"{lsid}.xml"
        temp = directory / f".{lsid}.tmp"
        with temp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.rename(temp, final)
        count += 1
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]
    return count


def write_config(workdir: Path, sim: SimulatedAppliance, archive: Path) -> Path:
    config = workdir / "btic.toml"
    config.write_text(
        sim.site_toml("sim")
        + f"""
[destinations.archive]
plugin = "filesystem"
directory = "{archive}"
file_name_format = "%LSID%.%EXTENSION%"
[logging]
directory = "{workdir / "logs"}"
"""
    )
    config.chmod(0o600)
    return config


def prefill(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (directory / f"older-{number:07d}.xml").write_bytes(b"<session/>")


def run(command: list[str]) -> float:
    """Run a btic command; the CPU seconds (user + system) its process used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed: {done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--prefill", type=int, default=0)
    parser.add_argument("--no-import", action="store_true", help="skip btic import-xml")
    args = parser.parse_args()
    timings: dict[str, list[float]] = {"baseline": [], "transfer": [], "import-xml": []}
    cpu: dict[str, list[float]] = {"transfer": [], "import-xml": []}
    with (
        tempfile.TemporaryDirectory(prefix="btic-bench-", dir=os.environ.get("BENCH_DIR")) as tmp,
        SimulatedAppliance(
            "rs",
            tls=False,
            sessions=args.sessions,
            live_sessions=0,
            presentations=0,
            seed=5,
            history_seconds=3 * 86400,
        ) as sim,
    ):
        root = Path(tmp)
        report = root / "report.xml"
        fetch_report(sim, report)
        size = report.stat().st_size
        os.sync()  # whatever earlier work left unwritten goes out before the first case
        for repetition in range(args.repeat):
            for case in ("baseline", "transfer", "import-xml"):
                if case == "import-xml" and args.no_import:
                    continue
                work = root / f"{case}-{repetition}"
                archive = work / "archive"
                prefill(archive, args.prefill)
                started = time.perf_counter()
                if case == "baseline":
                    count = baseline(sim, archive, work / "spool.xml")
                    assert count == args.sessions, count
                else:
                    config = write_config(work, sim, archive)
                    common = ["--config", str(config), "--site", "sim", "--dest", "archive", "-q"]
                    if case == "transfer":
                        command = [BTIC, "transfer", *common, "--type", "session", "--since", "7d"]
                    else:
                        command = [BTIC, "import-xml", str(report), *common]
                    cpu[case].append(run(command))
                timings[case].append(time.perf_counter() - started)
                written = sum(1 for _ in archive.glob("*.xml")) - args.prefill
                assert written == args.sessions, (case, written)
                # With online discard a deletion's TRIMs go out with the next journal
                # commit: settle them here, not in the next case's fsyncs.
                shutil.rmtree(work)
                os.sync()
    print(
        f"{args.sessions} sessions, report {size / 1e6:.1f} MB, "
        f"{args.prefill} files in the directory before, {args.repeat} repetitions"
    )
    base = statistics.median(timings["baseline"])
    for case, values in timings.items():
        if not values:
            continue
        median = statistics.median(values)
        used = (
            f"  CPU {statistics.median(cpu[case]) / args.sessions * 1e3:.2f} ms/session (median)"
            if cpu.get(case)
            else ""
        )
        print(
            f"{case:>10}: min {min(values):7.2f} s  median {median:7.2f} s  "
            f"{args.sessions / median:8.0f} sessions/s  ratio {base / median:.2f}{used}"
        )


if __name__ == "__main__":
    main()
