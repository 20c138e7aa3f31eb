"""A site's download slots: at most ``download_concurrency`` recordings downloading at
once, and a recording being handed to the destinations does not hold one."""

from __future__ import annotations

import sys
import threading
import time

from btic.sim import SimulatedAppliance
from btic.testing.helpers import run_transfer

HELD_PLUGIN = """
import threading
import btic
from pydantic import BaseModel, ConfigDict

#: the test releases the held deliveries through this
RELEASE = threading.Event()
HOLD = 2
held = []
delivered = []
lock = threading.Lock()

class Held:
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    @btic.hookimpl
    def on_recording(self, recording, ctx):
        with lock:
            hold = len(held) < HOLD
            if hold:
                held.append(recording.lsid)
        if hold:
            RELEASE.wait(60)
        with lock:
            delivered.append(recording.lsid)
        return btic.Delivery(location=recording.lsid)
"""


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_downloads_go_on_while_recordings_are_being_delivered(tmp_path, distributions, monkeypatch):
    site_packages = distributions.make(
        "btic-held", "1.0", {"held": "held_plugin:Held"}, {"held_plugin": HELD_PLUGIN}
    )
    monkeypatch.syspath_prepend(str(site_packages))
    sys.modules.pop("held_plugin", None)
    with SimulatedAppliance(
        "rs", sessions=12, seed=31, live_sessions=0, presentations=0, recording_size=200_000
    ) as sim:
        expected = sorted(
            s.lsid for s in sim.dataset.all() if s.has_recording and s.closed_at(sim.now())
        )
        assert len(expected) >= 4  # more than the two held and the two slots
        results = []
        run = threading.Thread(
            target=lambda: results.append(
                run_transfer(
                    sim,
                    tmp_path=tmp_path,
                    plugin="held",
                    options={},
                    data=("recording",),
                    concurrency=2,
                )
            )
        )
        run.start()
        try:
            import held_plugin  # loaded by the run's plugin manager

            # Two deliveries held: as many as there are download slots.
            assert wait_until(lambda: len(held_plugin.held) == 2, 30)
            # The two threads holding them have given their slots back: the other
            # threads fetch every remaining recording meanwhile. (With the slots
            # held through delivery, nothing more is fetched until they are let go.)
            downloads_went_on = wait_until(lambda: sim.files_sent >= len(expected), 15)
        finally:
            held_plugin.RELEASE.set()
            run.join(60)
        assert not run.is_alive()
    assert downloads_went_on
    assert sim.most_files_at_once <= 2  # never more downloads than the slots
    assert sorted(held_plugin.delivered) == expected  # every recording, once
    [result] = results
    assert not result.summary.failed


def test_what_a_run_owes_is_read_whole_while_download_threads_settle_it():
    """The session run reads what is left while its download threads settle
    recordings: every read is a consistent copy, never a set changing under it."""
    import threading

    from btic.transfer.pending import Pending
    from btic.types import DataType

    pending = Pending()
    lsids = [f"s{i}" for i in range(20_000)]
    for destination in ("a", "b"):
        pending.owe(DataType.RECORDING, destination, lsids)
    errors: list[BaseException] = []

    def settle(destination: str) -> None:
        try:
            for lsid in lsids:
                pending.settle(DataType.RECORDING, destination, [lsid])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=settle, args=(d,)) for d in ("a", "b")]
    for thread in threads:
        thread.start()
    sizes = []
    while any(thread.is_alive() for thread in threads):
        left = pending.left()
        sizes.append(sum(len(owed) for owed in left.values()))
        assert not any(pending.owed_anywhere(lsid) for lsid in ("nobody",))
    for thread in threads:
        thread.join()
    assert errors == []
    assert sizes == sorted(sizes, reverse=True)  # only ever shrinks
    assert pending.left() == {
        (DataType.RECORDING, "a"): frozenset(),
        (DataType.RECORDING, "b"): frozenset(),
    }
