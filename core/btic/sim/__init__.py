"""A simulated BeyondTrust RS or PA appliance, for the demo, tests, benchmarks
and plugin authors. See :class:`SimulatedAppliance` and ``btic sim``."""

from btic.sim.faults import FaultPlan
from btic.sim.server import FrozenClock, SimulatedAppliance

__all__ = ["FaultPlan", "FrozenClock", "SimulatedAppliance"]
