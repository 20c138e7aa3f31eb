"""The appliance clients of a process, one per site, kept across runs.

An API account holds 30 OAuth tokens and the 31st logs out the oldest
holder, so a daemon that made a new client (and asked for a new token) every
minute would, within half an hour, log out every other integration of that
account. A :class:`ClientPool` keeps each site's client — and so its token —
for as long as the site's settings stay the same; a reloaded configuration
that changes a site replaces that site's client only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from btic.appliance.client import ApplianceClient
from btic.appliance.connection import CallObserver
from btic.config import Config, SiteConfig


class ClientPool:
    """The clients of ``config``'s sites, made on first use.

    :param spool_dir: where the clients spool reports.
    :param observer: told of every call (metrics), if anyone watches.
    :param factory: makes the client of a site instead (tests inject one).
    """

    def __init__(
        self,
        config: Config,
        *,
        spool_dir: Path | None = None,
        observer: CallObserver | None = None,
        factory: Callable[[str], ApplianceClient] | None = None,
    ):
        self.config = config
        self.spool_dir = spool_dir
        self.observer = observer
        self._factory = factory
        self._clients: dict[str, tuple[SiteConfig, ApplianceClient]] = {}
        self._retired: list[ApplianceClient] = []
        self._lock = threading.Lock()

    def client(self, site: str) -> ApplianceClient:
        """The client of ``site``, shared by every transfer and thread that asks."""
        with self._lock:
            known = self._clients.get(site)
            if known is None:
                known = self._clients[site] = (self.config.sites[site], self._make(site))
            return known[1]

    def reconfigure(self, config: Config) -> None:
        """Use ``config`` from now on: sites whose settings changed or went get a new
        client on next use. The old ones are closed with the pool, since a
        transfer still running may be using them."""
        with self._lock:
            self.config = config
            for site, (settings, client) in list(self._clients.items()):
                if config.sites.get(site) != settings:
                    del self._clients[site]
                    self._retired.append(client)

    def close(self) -> None:
        with self._lock:
            clients = [client for _, client in self._clients.values()] + self._retired
            self._clients, self._retired = {}, []
        for client in clients:
            client.close()

    def _make(self, site: str) -> ApplianceClient:
        if self._factory is not None:
            return self._factory(site)
        return ApplianceClient.for_site(
            site, self.config, spool_dir=self.spool_dir, observer=self.observer
        )
