"""Writing each run's signed digest into the destinations, and checking them: the
policy around :mod:`btic.integrity` (which is the format and the cryptography)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from structlog.typing import FilteringBoundLogger

from btic.config import Config
from btic.errors import BticError, DestinationError
from btic.integrity import (
    ChainFinding,
    check_chain,
    latest_entries,
    load_private_key,
    load_public_key,
    make_digest,
)
from btic.plugins import PluginManager
from btic.state import StateStore
from btic.state.values import now
from btic.stored import stored_item
from btic.transfer.summary import Summary
from btic.types import DataType, StoredItem, VerifyFinding

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


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
    secret = config.integrity.signing_key
    if secret is None:
        return
    try:
        key = load_private_key(secret.get_secret_value().encode(), "integrity.signing_key")
    except BticError as exc:
        summary.problem(f"no digest written: {exc}")
        return
    for destination in dict.fromkeys(destinations):
        entries = state.run_entries(destination, run_id)
        if not entries:
            continue
        if not plugins.can_digest(destination):
            summary.note(f"{destination}: its plugin keeps no digests (no on_digest)")
            continue
        created = now()
        digest = make_digest(
            key=key,
            destination=destination,
            run_id=run_id,
            created_at=created,
            previous=state.last_digest(destination),
            entries=entries,
        )
        try:
            location = plugins.on_digest(destination, digest=digest)
        except DestinationError as exc:
            summary.problem(f"{destination}: the run's digest could not be stored: {exc}")
            continue
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
    if integrity.signing_key is None:
        return None
    pem = integrity.signing_key.get_secret_value().encode()
    return load_private_key(pem, "integrity.signing_key").public_key()


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


__all__ = ["DigestReport", "check_digests", "public_key_of", "signing_enabled", "write_digests"]
