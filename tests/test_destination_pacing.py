"""A destination beyond files, end to end: a collector that cannot de-duplicate (its
sent-log in ``ctx.state``), answers 429 with Retry-After for a while, then recovers."""

from __future__ import annotations

import sqlite3

from collector import PLUGIN, CollectorService
from conftest import run_btic

from btic.sim import FrozenClock, SimulatedAppliance

DATA = ["session", "recording", "command_shell_recording"]


def _config(tmp_path, sim, url):
    config = tmp_path / "btic.toml"
    config.write_text(
        sim.site_toml("sim")
        + 'first_run_since = "all"\n'
        + f'[destinations.siem]\nplugin = "collector"\nurl = "{url}"\nbatch_bytes = 6000\n'
        + '[schedules.n]\nevery = "1d"\n[[schedules.n.transfers]]\nsite = "sim"\n'
        + 'destinations = ["siem"]\ndata = ["session", "recording", "command_shell_recording"]\n'
        + f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
    )
    config.chmod(0o600)
    return config


def test_a_busy_collector_gets_every_item_once_and_nothing_is_given_up(distributions, tmp_path):
    site = distributions.make(
        "btic-collector", "1.0", {"collector": "collector_mod:Collector"},
        {"collector_mod": PLUGIN},
    )  # fmt: skip
    clock = FrozenClock()
    with (
        SimulatedAppliance(
            "rs", sessions=8, seed=5, live_sessions=0, presentations=0, recording_size=20_000,
            clock=clock,
        ) as sim,
        CollectorService(busy=3, retry_after=1) as collector,
    ):  # fmt: skip
        config = _config(tmp_path, sim, collector.url)
        args = ("transfer", "--site", "sim", "--dest", "siem", "--since", "2020-01-01")
        args += ("--config", str(config))
        types = [arg for data_type in DATA for arg in ("--type", data_type)]
        first = run_btic(*args, *types, pythonpath=[site], timeout=300)
        assert first.returncode == 0, first.output
        assert collector.refused == 3  # it was busy, and btic waited instead of failing
        keys = collector.keys()
        assert len(keys) == len(set(keys)), "an item reached the collector twice"
        with sqlite3.connect(tmp_path / "state.db") as db:
            ledger = dict(
                db.execute(
                    "select data_type || '/' || item_key, status from btic_deliveries "
                    "where item_key not like '%#%' or data_type = 'command_shell_recording'"
                )
            )
            sent_log = {
                key for (key,) in db.execute("select item_key from btic_destination_values")
            }
        assert set(ledger.values()) <= {"delivered", "no_recording"}, ledger
        sessions = [k for k in keys if "/session/" in k]
        assert len(sessions) == 8
        # the sent-log knows every event the collector holds, by the key str() gives
        assert sent_log == set(keys)
        assert collector.most_at_once <= 2  # the plugin's concurrency limit

        # Everything again, forced: the sent-log and last_sha256 recognise it all.
        again = run_btic(*args, *types, "--force", pythonpath=[site], timeout=300)
        assert again.returncode == 0, again.output
        assert collector.keys() == keys
