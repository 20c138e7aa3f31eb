"""Legal holds passed on to destinations that keep holds of their own (``on_hold``:
S3's object legal hold).

btic's hold, in its state database, is what its retention obeys, at every
destination; passing it on keeps the items from anyone else who can delete
there. A destination that cannot take the hold leaves btic's hold standing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from btic.config import Config
from btic.errors import DestinationError
from btic.plugins import PluginManager
from btic.state import StateStore
from btic.stored import stored_item_of


@dataclass
class PassedOn:
    """What one destination made of a hold (placed or lifted) on the items it holds.

    :ivar done: items it now holds so (or no longer holds).
    :ivar kept_by_btic_only: items it keeps no holds for (an S3 bucket without object lock).
    :ivar failures: ``item key: reason`` for each item it could not.
    """

    destination: str
    done: int = 0
    kept_by_btic_only: int = 0
    failures: list[str] = field(default_factory=list)


def pass_on(
    config: Config,
    plugins: PluginManager,
    state: StateStore,
    site: str,
    lsids: Iterable[str],
    *,
    held: bool,
) -> list[PassedOn]:
    """Place (``held``) or lift the hold on every delivered item of these sessions at
    each configured destination whose plugin keeps holds; one result per destination."""
    results: dict[str, PassedOn] = {}
    for entry in state.delivered_items_of(site, lsids):
        destination = entry.destination
        if destination not in config.destinations:
            continue  # no longer configured: nothing to ask
        if destination not in results:
            config.configure_destination(plugins, destination)
            results[destination] = PassedOn(destination)
        result = results[destination]
        if not plugins.can_hold(destination):
            result.kept_by_btic_only += 1
            continue
        item = stored_item_of(config, entry)
        try:
            if plugins.on_hold(destination, item=item, held=held):
                result.done += 1
            else:
                result.kept_by_btic_only += 1
        except DestinationError as exc:
            result.failures.append(f"{entry.item_key}: {exc}")
    return list(results.values())
