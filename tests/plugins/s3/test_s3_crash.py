"""SIGKILL mid-upload at random moments: after a rerun every object is in the bucket
once, under its own key, and no unfinished multipart upload is left."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import BTIC, run_btic
from s3_server import moto_server
from transfer_helpers import expected_files, write_config

from btic.sim import SimulatedAppliance

TRIALS = 8
DATA = ["session", "recording", "command_shell_recording"]


def test_sigkill_mid_upload_leaves_every_object_once_and_no_unfinished_upload(tmp_path):
    rng = random.Random(20261124)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTIC_")}
    with (
        moto_server() as s3,
        SimulatedAppliance(
            "rs", sessions=6, seed=43, recording_size=12_000_000, live_sessions=0,
            faults="latency=0.02",
        ) as sim,
    ):  # fmt: skip
        expected = expected_files(sim, data=DATA)
        assert sum(1 for sha in expected.values() if sha) >= 4  # several multipart uploads

        def config_for(directory: Path, bucket: str) -> Path:
            options = s3.options(bucket, part_size_mb=5, max_concurrency=2)
            lines = "".join(
                f"{key} = {value!r}\n".replace("'", '"') for key, value in options.items()
            )
            return write_config(
                directory,
                sim,
                data=DATA,
                destinations=f'[destinations.archive]\nplugin = "s3"\n{lines}',
                extra_site='settle_delay = "1s"\n',
            )

        reference = tmp_path / "reference"
        reference.mkdir()
        started = time.monotonic()
        clean = run_btic(
            "sync", "--config", str(config_for(reference, s3.bucket("btic-reference")))
        )
        full_run = time.monotonic() - started
        assert clean.returncode == 0, clean.output

        for trial in range(TRIALS):
            directory = tmp_path / f"trial{trial}"
            directory.mkdir()
            bucket = s3.bucket(f"btic-trial-{trial}")
            config = config_for(directory, bucket)
            moment = rng.uniform(0.3, full_run)
            with (directory / "killed.log").open("w") as log:
                proc = subprocess.Popen(
                    [BTIC, "sync", "--all", "-v", "--config", str(config)],
                    stdout=log,
                    stderr=log,
                    env=env,
                )
                time.sleep(moment)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            rerun = run_btic("sync", "--all", "--config", str(config))
            assert rerun.returncode == 0, f"trial {trial}: {rerun.output}"
            stored = {k: v for k, v in s3.objects(bucket).items() if ".btic-uploads/" not in k}
            assert s3.unfinished_uploads(bucket) == [], f"trial {trial} (killed at {moment:.2f}s)"
            assert set(stored) == set(expected), (
                f"trial {trial}: missing {sorted(set(expected) - set(stored))[:3]}, "
                f"extra {sorted(set(stored) - set(expected))[:3]}"
            )
            for key, sha in expected.items():
                if sha:
                    assert hashlib.sha256(stored[key]).hexdigest() == sha, f"trial {trial}: {key}"
