"""Writing each run's signed digest into the destinations, and checking them: the
policy around :mod:`btic.integrity` (which is the format and the cryptography)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from structlog.typing import FilteringBoundLogger

from btic.config import Config
from btic.errors import BticError, DestinationError
from btic.integrity import (
    ChainFinding,
    DigestEntry,
    check_chain,
    latest_entries,
    load_private_key,
    load_public_key,
    make_digest,
)
from btic.leases import Leases
from btic.plugins import PluginManager
from btic.state import LOCK_NAME_LENGTH, StateStore, fit_column
from btic.state.values import now
from btic.stored import stored_item
from btic.transfer.summary import Summary
from btic.types import DataType, StoredItem, VerifyFinding

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

#: With ``[integrity]``, the daemon writes a digest into each destination at least
#: this often, an empty one when no run wrote there: a gap in a chain's times is a
#: gap in btic's watch (AWS CloudTrail writes its digest files hourly for this).
HEARTBEAT = timedelta(hours=1)
#: The run id of such a digest.
IDLE_RUN = "idle"
#: How long a run waits for another's digest to be written into the same destination.
LEASE_WAIT = 30.0


def signing_enabled(config: Config) -> bool:
    return config.integrity.signing_key is not None


def write_digests(
    config: Config,
    plugins: PluginManager,
    state: StateStore,
    *,
    run_id: str,
    destinations: Iterable[str],
    summary: Summary,
    log: FilteringBoundLogger,
) -> None:
    """Write run ``run_id``'s digest into each of ``destinations`` it wrote to or
    removed from; a failure is the run's problem (the next run's digest chains on
    from the last one written)."""
    try:
        key = _signing_key(config)
    except BticError as exc:
        summary.problem(f"no digest written: {exc}")
        return
    if key is None:
        return
    for destination in dict.fromkeys(destinations):
        entries = state.run_entries(destination, run_id)
        if not entries:
            continue
        if not plugins.can_digest(destination):
            summary.note(f"{destination}: its plugin keeps no digests (no on_digest)")
            continue
        with _chain_of(state, destination, run_id, wait=LEASE_WAIT) as held:
            if not held:
                summary.problem(
                    f"{destination}: the run's digest was not written: another run kept its "
                    f"chain for {LEASE_WAIT:.0f} s"
                )
                continue
            try:
                _write_one(plugins, state, key, destination, run_id, entries, now(), log)
            except DestinationError as exc:
                summary.problem(f"{destination}: the run's digest could not be stored: {exc}")


def write_heartbeats(
    config: Config,
    plugins: PluginManager,
    state: StateStore,
    *,
    log: FilteringBoundLogger,
    clock: Callable[[], datetime] = now,
) -> list[str]:
    """Write an empty digest into each destination whose last digest is older than
    :data:`HEARTBEAT` (the daemon calls it between runs): its chain then shows that
    btic watched the destination every hour, and a gap shows when it did not.
    Returns the destinations written to; a failure is logged and tried next time."""
    if not signing_enabled(config):
        return []
    written = []
    key = None
    for destination in config.destinations:
        moment = clock()
        if not _owes_heartbeat(state, destination, moment):
            continue
        try:
            key = key or _signing_key(config)
            assert key is not None  # signing is enabled
            config.configure_destination(plugins, destination)
            if not plugins.can_digest(destination):
                continue
            with _chain_of(state, destination, IDLE_RUN, wait=0) as held:
                # Asked again under the lease: a run may have written one meanwhile.
                if not held or not _owes_heartbeat(state, destination, moment):
                    continue
                _write_one(plugins, state, key, destination, IDLE_RUN, [], moment, log)
        except BticError as exc:
            log.error(f"{destination}: the hourly digest could not be stored: {exc}")
            continue
        written.append(destination)
    return written


def _owes_heartbeat(state: StateStore, destination: str, moment: datetime) -> bool:
    last = state.last_digest_time(destination)
    return last is None or moment - last >= HEARTBEAT


def _signing_key(config: Config) -> Ed25519PrivateKey | None:
    """``[integrity] signing_key``, loaded; None when it is not set.

    :raises BticError: it is not a usable key.
    """
    secret = config.integrity.signing_key
    if secret is None:
        return None
    return load_private_key(secret.get_secret_value().encode(), "integrity.signing_key")


@contextmanager
def _chain_of(state: StateStore, destination: str, run_id: str, *, wait: float) -> Iterator[bool]:
    """Hold the lease of ``destination``'s chain (True), waiting up to ``wait``
    seconds for another run's: two writers reading the same last digest would fork
    the chain, and the fork would read as tampering."""
    leases = Leases(state, run_id)
    name = fit_column(f"digests/{destination}", LOCK_NAME_LENGTH)
    deadline = time.monotonic() + wait
    try:
        held = leases.acquire(name) is None
        while not held and time.monotonic() < deadline:
            time.sleep(0.2)
            held = leases.acquire(name) is None
        yield held
    finally:
        leases.close()


def _write_one(
    plugins: PluginManager,
    state: StateStore,
    key: Ed25519PrivateKey,
    destination: str,
    run_id: str,
    entries: list[DigestEntry],
    created: datetime,
    log: FilteringBoundLogger,
) -> None:
    """Sign one digest chained to the destination's last, store it there, record it.

    :raises DestinationError: the destination could not store it.
    """
    digest = make_digest(
        key=key,
        destination=destination,
        run_id=run_id,
        created_at=created,
        previous=state.last_digest(destination),
        entries=entries,
    )
    location = plugins.on_digest(destination, digest=digest)
    state.record_digest(
        destination=destination,
        name=digest.name,
        sha256=digest.sha256,
        run_id=run_id,
        location=location,
        created_at=created,
    )
    log.info("digest written", destination=destination, name=digest.name, items=len(entries))


def public_key_of(config: Config) -> Ed25519PublicKey | None:
    """The key digests are checked with: ``[integrity] public_key``, else the signing
    key's own; None when neither is set."""
    integrity = config.integrity
    if integrity.public_key is not None:
        path = integrity.public_key
        path = path if path.is_absolute() else config.base_dir / path
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise BticError(f"integrity.public_key: {path}: {exc.strerror}") from None
        return load_public_key(pem, f"integrity.public_key ({path})")
    key = _signing_key(config)
    return None if key is None else key.public_key()


@dataclass
class DigestReport:
    """What checking one destination's digests found."""

    destination: str
    digests: int = 0
    chain: list[ChainFinding] | None = None
    items: list[VerifyFinding] | None = None
    error: str | None = None


def check_digests(
    config: Config,
    plugins: PluginManager,
    state: StateStore,
    destination: str,
    public_key: Ed25519PublicKey,
) -> DigestReport:
    """Check a destination against its own digests: every signature and link, and
    every item the digests say it holds (through the plugin's ``on_verify``, with
    the digests' sha256, not the ledger's)."""
    report = DigestReport(destination)
    if not plugins.can_digest(destination):
        report.error = "its plugin keeps no digests"
        return report
    try:
        digests = list(plugins.on_digests(destination))
        report.digests = len(digests)
        report.chain, documents = check_chain(
            digests, public_key, expected=state.digest_names(destination)
        )
        held = [
            _stored(config, entry)
            for entry in latest_entries(documents)
            if entry.get("action") == "delivered" and entry.get("location")
        ]
        report.items = list(plugins.on_verify(destination, items=held)) if held else []
    except DestinationError as exc:
        report.error = str(exc)
    return report


def _stored(config: Config, entry: dict[str, object]) -> StoredItem:
    size, sha256 = entry.get("size"), entry.get("sha256")
    return stored_item(
        config,
        site=str(entry["site"]),
        data_type=DataType(str(entry["data_type"])),
        ledger_key=str(entry["item_key"]),
        location=str(entry["location"]),
        size=size if isinstance(size, int) else None,
        sha256=sha256 if isinstance(sha256, str) else None,
        item_time=None,
    )


__all__ = [
    "HEARTBEAT",
    "DigestReport",
    "check_digests",
    "public_key_of",
    "signing_enabled",
    "write_digests",
    "write_heartbeats",
]
