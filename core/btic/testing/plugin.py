"""The btic pytest plugin (entry point ``pytest11``): fixtures for plugin authors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def btic_sim() -> Iterator[Any]:
    """A running simulated RS appliance: 24 sessions with recordings of every kind, over HTTPS."""
    from btic.sim import SimulatedAppliance

    with SimulatedAppliance(
        "rs", sessions=24, seed=42, recording_size=96 * 1024, live_sessions=0
    ) as sim:
        yield sim


@pytest.fixture
def btic_transfer(btic_sim: Any, tmp_path: Path) -> Callable[..., Any]:
    """A real transfer from ``btic_sim``.

    ``btic_transfer(plugin=..., options={...}, data=[...], force=False)``
    """
    from btic.testing.helpers import run_transfer

    def transfer(*, plugin: str, options: dict[str, Any], **kwargs: Any) -> Any:
        return run_transfer(btic_sim, tmp_path=tmp_path, plugin=plugin, options=options, **kwargs)

    return transfer


@pytest.fixture
def btic_destination(tmp_path: Path) -> Callable[..., Any]:
    """``btic_destination(plugin, options)``: a configured destination, hooks called directly."""
    from btic.testing.helpers import ConfiguredDestination

    def make(plugin: str, options: dict[str, Any]) -> ConfiguredDestination:
        return ConfiguredDestination(plugin, options, tmp_path)

    return make
