"""The WAN benchmark's lower bound (benchmarks/wan_sync.py): its arithmetic, and the
work it reads from the simulator's request counts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "wan_sync.py"
_SPEC = importlib.util.spec_from_file_location("wan_sync", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
wan_sync = importlib.util.module_from_spec(_SPEC)
sys.modules["wan_sync"] = wan_sync  # dataclasses look their module up there
_SPEC.loader.exec_module(wan_sync)


def test_latency_bound_when_the_link_is_fast():
    work = wan_sync.Work(sequential_calls=3, report_calls=1, download_calls=10, download_bytes=1000)
    # 3 sequential latencies, then ceil(10 / 4) = 3 rounds of downloads
    assert wan_sync.lower_bound(work, latency=0.05, bandwidth=1e9, concurrency=4) == pytest.approx(
        0.30
    )


def test_bandwidth_bound_when_the_link_is_slow():
    work = wan_sync.Work(
        sequential_calls=3,
        report_calls=2,
        download_calls=10,
        report_bytes=5_000_000,
        download_bytes=15_000_000,
    )
    # 20 MB over 10 MB/s = 2 s, more than the 3 rounds of latency
    assert wan_sync.lower_bound(work, latency=0.05, bandwidth=10e6, concurrency=4) == pytest.approx(
        0.15 + 2.0
    )


def test_the_report_stream_is_one_call_after_another():
    # 30 report batches of 50 ms on one stream outlast 8 downloads over 4 connections
    work = wan_sync.Work(sequential_calls=1, report_calls=30, download_calls=8)
    assert wan_sync.lower_bound(work, latency=0.05, bandwidth=1e9, concurrency=4) == pytest.approx(
        0.05 + 1.5
    )


def test_more_concurrency_never_raises_the_bound_and_nonsense_is_refused():
    work = wan_sync.Work(sequential_calls=2, report_calls=1, download_calls=41)
    bounds = [
        wan_sync.lower_bound(work, latency=0.1, bandwidth=1e6, concurrency=c) for c in range(1, 9)
    ]
    assert bounds == sorted(bounds, reverse=True)
    assert bounds[0] == pytest.approx(0.2 + 4.1)
    with pytest.raises(ValueError, match="bandwidth positive"):
        wan_sync.lower_bound(work, latency=0.1, bandwidth=0, concurrency=1)
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        wan_sync.lower_bound(work, latency=0.1, bandwidth=1e6, concurrency=0)


def test_work_is_read_from_the_simulators_request_counts():
    stats = {
        "connections": 60,
        "token": 1,
        "command": 2,
        "SupportSessionListing": 1,
        "SupportSession": 40,
        "SupportSessionRecording": 15,
    }
    assert wan_sync.work_of(
        stats, carried=5_000_000, download_bytes=4_500_000, sequential_bytes=200_000
    ) == wan_sync.Work(
        sequential_calls=4,
        report_calls=40,
        download_calls=15,
        report_bytes=300_000,
        download_bytes=4_500_000,
    )


def test_each_connection_pays_its_calls_latency_and_bytes():
    # 40 downloads of 50 ms with 10 MB in all, at 10 MB/s: over 4 connections the link's
    # 1 s is the longest (the connections' share is (2 s + 1 s) / 4 = 0.75 s)
    work = wan_sync.Work(
        sequential_calls=0, report_calls=0, download_calls=40, download_bytes=10_000_000
    )
    fast = wan_sync.lower_bound(work, latency=0.05, bandwidth=10e6, concurrency=4)
    assert fast == pytest.approx(1.0)
    # over 2 connections each pays its calls' latency and bytes: (2 s + 1 s) / 2
    slow = wan_sync.lower_bound(work, latency=0.05, bandwidth=10e6, concurrency=2)
    assert slow == pytest.approx(1.5)
