"""Tamper evidence: signed, chained digests of what each run wrote and removed, as
CloudTrail's digest files are.

After a run, btic writes into each destination it wrote to a digest: that run's
deliveries and removals there (item, location, sha256, size), the sha256 of the
destination's previous digest, and an Ed25519 signature of it all made with the
key of ``[integrity] signing_key``. So the archive proves itself without trusting
the state database: an item changed together with the ledger's sha256 still
differs from its digest; a deleted digest breaks the chain; an item deleted with
no removal recorded is missing against its digest. The signature is
:mod:`cryptography`'s Ed25519; nothing here is hand-written cryptography.

A digest is canonical JSON (keys sorted, no spaces), stored as ``NAME.json`` with
its signature beside it (``NAME.json.sig``, base64), named by its time and run so
that names sort in the order they were written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from btic.errors import BticError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

FORMAT = "btic-digest/1"
#: Where a destination keeps its digests, beside the items (the file system's
#: directory, an S3 prefix): hidden from listings of items.
DIGEST_DIRECTORY = ".btic-digests"
#: An export's manifest (every item: where it is in the package, its hashes, its times).
MANIFEST = "manifest.json"


class IntegrityError(BticError):
    """The signing key cannot be used, or a digest cannot be read."""


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - an extra
        raise IntegrityError(
            "signed digests need the cryptography package: pip install 'btic[integrity]'"
        ) from None
    return serialization, ed25519


def generate_key_pair(directory: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair into ``directory``: ``btic-signing.key`` (PKCS #8
    PEM, readable by its owner only) and ``btic-signing.pub``. Refuses to replace one.

    :raises IntegrityError: when a key file is there already.
    """
    serialization, ed25519 = _crypto()
    private, public = directory / "btic-signing.key", directory / "btic-signing.pub"
    for path in (private, public):
        if path.exists():
            raise IntegrityError(f"{path} exists; a signing key is never replaced in place")
    key = ed25519.Ed25519PrivateKey.generate()
    directory.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created owner-only, never world-readable even for a moment.
    with open(private, "xb", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        out.write(pem)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def load_private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise IntegrityError(
            f"{where}: not a PEM private key without a passphrase: {exc}"
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise IntegrityError(f"{where}: not an Ed25519 key (btic integrity keygen makes one)")
    return cast("Ed25519PrivateKey", key)


def load_public_key(pem: bytes, where: str) -> Ed25519PublicKey:
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise IntegrityError(f"{where}: not a PEM public key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise IntegrityError(f"{where}: not an Ed25519 public key")
    return cast("Ed25519PublicKey", key)


@dataclass(frozen=True)
class DigestEntry:
    """One item a run delivered to a destination, or removed from it."""

    action: str  # "delivered" or "removed"
    site: str
    data_type: str
    item_key: str
    location: str | None
    sha256: str | None
    size: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "site": self.site,
            "data_type": self.data_type,
            "item_key": self.item_key,
            "location": self.location,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass(frozen=True)
class Digest:
    """A signed digest: its name, its bytes (canonical JSON) and its signature."""

    name: str
    body: bytes
    signature: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    def signature_file(self) -> bytes:
        """The signature as its file (``NAME.json.sig``) holds it: base64, one line."""
        return base64.b64encode(self.signature) + b"\n"

    @classmethod
    def read(cls, name: str, body: bytes, signature_file: bytes) -> Digest:
        """A digest from its two files, as a destination stored them (an unreadable
        signature is kept as empty bytes: it then fails to verify, and says so)."""
        try:
            signature = base64.b64decode(signature_file.strip(), validate=True)
        except ValueError:
            signature = b""
        return cls(name, body, signature)

    def document(self) -> dict[str, Any]:
        try:
            document = json.loads(self.body)
        except ValueError as exc:
            raise IntegrityError(f"digest {self.name}: not JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise IntegrityError(f"digest {self.name}: not a {FORMAT} document")
        return document


def canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_digest(
    *,
    key: Ed25519PrivateKey,
    destination: str,
    run_id: str,
    created_at: datetime,
    previous: tuple[str, str] | None,
    entries: Iterable[DigestEntry],
) -> Digest:
    """The signed digest of one run at one destination, chained to ``previous``
    (the name and sha256 of the destination's digest before it)."""
    moment = created_at.strftime("%Y%m%dT%H%M%S%fZ")
    document = {
        "format": FORMAT,
        "destination": destination,
        "run_id": run_id,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "previous": None if previous is None else {"name": previous[0], "sha256": previous[1]},
        "items": [entry.as_json() for entry in entries],
    }
    body = canonical(document)
    return Digest(f"{moment}-{run_id}", body, key.sign(body))


def read_digests(directory: Path) -> Iterator[Digest]:
    """Every digest kept as files in ``directory`` (``NAME.json`` and ``NAME.json.sig``),
    as the file system destination keeps them under :data:`DIGEST_DIRECTORY`."""
    for body in sorted(directory.glob("*.json")):
        signature = body.with_name(body.name + ".sig")
        yield Digest.read(
            body.name[: -len(".json")],
            body.read_bytes(),
            signature.read_bytes() if signature.exists() else b"",
        )


@dataclass(frozen=True)
class ChainFinding:
    """Something wrong with a destination's digests."""

    kind: str  # "signature", "chain", "unreadable"
    digest: str
    detail: str

    def line(self) -> str:
        return f"digest {self.digest}: {self.detail}"


def check_chain(
    digests: Iterable[Digest], public_key: Ed25519PublicKey, *, expected: Iterable[str] = ()
) -> tuple[list[ChainFinding], list[dict[str, Any]]]:
    """Check every digest's signature and every link, oldest first; return the
    findings and the documents of the digests that are sound, in order.

    :param expected: names of digests the state database says were written: one
        that is gone is a finding (a chain cut at its end shows only this way).
    """
    from cryptography.exceptions import InvalidSignature

    findings: list[ChainFinding] = []
    documents: list[dict[str, Any]] = []
    ordered = sorted(digests, key=lambda d: d.name)
    by_name = {d.name: d for d in ordered}
    previous: Digest | None = None
    for digest in ordered:
        try:
            public_key.verify(digest.signature, digest.body)
        except InvalidSignature:
            findings.append(
                ChainFinding("signature", digest.name, "its signature does not verify: changed")
            )
            previous = digest
            continue
        try:
            document = digest.document()
        except IntegrityError as exc:
            findings.append(ChainFinding("unreadable", digest.name, str(exc)))
            previous = digest
            continue
        link = document.get("previous")
        if previous is None and link is not None:
            missing = link.get("name") if isinstance(link, dict) else link
            findings.append(
                ChainFinding("chain", digest.name, f"the digest before it ({missing}) is missing")
            )
        elif previous is not None:
            if not isinstance(link, dict) or link.get("name") != previous.name:
                named = link.get("name") if isinstance(link, dict) else None
                detail = (
                    f"it follows {named}, which is missing"
                    if named and named not in by_name
                    else f"it does not follow {previous.name}: digests were removed or reordered"
                )
                findings.append(ChainFinding("chain", digest.name, detail))
            elif link.get("sha256") != previous.sha256:
                detail = f"{previous.name} is not the digest it followed: it was replaced"
                findings.append(ChainFinding("chain", digest.name, detail))
        documents.append(document)
        previous = digest
    for name in expected:
        if name not in by_name:
            findings.append(ChainFinding("chain", name, "it was written and is gone"))
    return findings, documents


def latest_entries(documents: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each item's last entry over the digests, in order: what the archive must hold
    now (``delivered``) or must not (``removed``)."""
    last: dict[tuple[str, str, str], dict[str, Any]] = {}
    for document in documents:
        for entry in document.get("items", ()):
            key = (entry.get("site"), entry.get("data_type"), entry.get("item_key"))
            last[key] = entry
    yield from last.values()
