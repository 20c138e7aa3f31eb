"""``Type=notify`` services: `btic run` and `btic worker` tell systemd when they are
ready, ping its watchdog, and say when they stop, over a real datagram socket
standing in for systemd's (sd_notify(3))."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BTIC
from transfer_helpers import write_config

from btic.sim import SimulatedAppliance
from btic.systemd import Notifier


class FakeSystemd:
    """systemd's end of $NOTIFY_SOCKET: a datagram socket that collects the messages."""

    def __init__(self, address: str):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        bound = "\0" + address[1:] if address.startswith("@") else address
        self.sock.bind(bound)
        self.received: list[str] = []

    def next(self, timeout: float = 120) -> list[str]:
        """The next message's assignments (a generous bound: a hung service fails here)."""
        self.sock.settimeout(timeout)
        message = self.sock.recv(4096).decode().split("\n")
        self.received.append("\n".join(message))
        return message

    def until(self, assignment: str, processes: list[subprocess.Popen[bytes]]) -> list[str]:
        while True:
            for process in processes:
                assert process.poll() is None, f"exited {process.returncode} before {assignment}"
            message = self.next()
            if assignment in message:
                return message

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(str(tmp_path / "notify"))
    yield fake
    fake.close()


def test_the_notifier_speaks_the_protocol_to_a_path_and_an_abstract_socket(tmp_path):
    for address in (str(tmp_path / "notify"), f"@btic-test-{os.getpid()}"):
        fake = FakeSystemd(address)
        try:
            notifier = Notifier.from_environment(
                {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "3600000000"}
            )
            assert notifier.ping_every == 1800
            notifier.alive()  # the first ping is due at once
            assert fake.next(5) == ["WATCHDOG=1"]
            notifier.ready("2 schedules")
            assert fake.next(5) == ["READY=1", "STATUS=2 schedules"]
            notifier.alive()  # within half the timeout of the last: not sent
            notifier.stopping()
            assert fake.next(5) == ["STOPPING=1"]
        finally:
            fake.close()


def test_without_systemd_or_for_another_pid_nothing_is_sent():
    assert not Notifier.from_environment({}).active
    Notifier.from_environment({}).ready()  # inert, no error
    other = Notifier.from_environment(
        {"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    )
    assert other.ping_every is None  # the watchdog is another process's
    other.ready()  # an unreachable socket is not btic's failure


def notify_env(systemd: FakeSystemd, watchdog_usec: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BTIC_", "WATCHDOG_"))}
    return {**env, "NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": str(watchdog_usec)}


def test_btic_run_is_ready_pings_the_watchdog_and_says_it_stops(tmp_path, systemd):
    with SimulatedAppliance("rs", sessions=3, seed=61, live_sessions=0) as sim:
        config = write_config(tmp_path, sim, data=["session"])
        log = tmp_path / "run.log"
        with log.open("ab") as out:
            daemon = subprocess.Popen(
                [BTIC, "run", "--config", str(config)],
                stdout=out,
                stderr=out,
                env=notify_env(systemd, 2_000_000),  # a ping at least every second
            )
        try:
            ready = systemd.until("READY=1", [daemon])
            assert any(a.startswith("STATUS=") and "schedule" in a for a in ready)
            # The loop sleeps no longer than the watchdog allows, runs or not.
            systemd.until("WATCHDOG=1", [daemon])
            systemd.until("WATCHDOG=1", [daemon])
            daemon.send_signal(signal.SIGTERM)
            systemd.until("STOPPING=1", [])
            assert daemon.wait(timeout=120) == 0, log.read_text()
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
