"""Test tools for btic plugin authors.

Installed with btic as a pytest plugin (entry point ``pytest11``), so these
fixtures are available in any test suite:

* ``btic_sim``: a running simulated RS appliance (HTTPS, its CA trusted);
* ``btic_transfer``: runs a real transfer from it into your destination;
* ``btic_destination``: your destination configured alone, to call its hooks.

And a conformance suite to subclass::

    from btic.testing import DestinationConformance

    class TestMyDestination(DestinationConformance):
        plugin = "mything"

        @pytest.fixture
        def destination_options(self, tmp_path): ...
        @pytest.fixture
        def broken_options(self, tmp_path): ...
        def stored_items(self, options): ...
"""

from btic.sim import FrozenClock, SimulatedAppliance
from btic.testing.conformance import DestinationConformance
from btic.testing.helpers import (
    BatchOutcome,
    ConfiguredDestination,
    TransferResult,
    make_recording,
    sample_session,
    spool_file,
)

__all__ = [
    "BatchOutcome",
    "ConfiguredDestination",
    "DestinationConformance",
    "FrozenClock",
    "SimulatedAppliance",
    "TransferResult",
    "make_recording",
    "sample_session",
    "spool_file",
]
