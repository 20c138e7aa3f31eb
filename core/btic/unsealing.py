"""Sealed items back to their plain bytes, for whoever holds an age identity.

What a destination with ``encrypt`` stored (``.age`` files: session reports,
recordings, backups) is opened one file at a time, streamed, or every ``.age``
file under a directory: an export, or a copy of an archive. In an export, each
file's plain sha256 is checked against the one the ledger recorded at delivery
(its manifest's ``plain_sha256``), so the auditor knows the bytes they read are
the bytes btic archived.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from btic import encryption
from btic.integrity import MANIFEST
from btic.naming import SEALED_EXTENSION

if TYPE_CHECKING:
    from pyrage import x25519


@dataclass(frozen=True)
class Opened:
    """One sealed file, and what became of it.

    :ivar source: the ``.age`` file.
    :ivar target: where its plain bytes went (None when nothing was written).
    :ivar sha256: of the plain bytes.
    :ivar expected: the plain sha256 recorded at delivery, when known (an export).
    :ivar problem: why it was not opened, for the user.
    """

    source: Path
    target: Path | None = None
    size: int | None = None
    sha256: str | None = None
    expected: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.expected in (None, self.sha256)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "target": None if self.target is None else str(self.target),
            "size": self.size,
            "sha256": self.sha256,
            "expected_sha256": self.expected,
            "ok": self.ok,
            "problem": self.problem,
        }


def open_sealed(
    paths: Sequence[Path],
    identities: Sequence[x25519.Identity],
    *,
    out: Path | None = None,
    force: bool = False,
) -> Iterator[Opened]:
    """Open each ``.age`` file of ``paths`` (a file, or a directory searched
    recursively); each plain copy goes beside its file without ``.age``, or under
    ``out`` (a directory's files keep their relative paths there)."""
    for path in paths:
        if path.is_dir():
            expected = _manifest_hashes(path)
            for source in sorted(path.rglob(f"*.{SEALED_EXTENSION}")):
                if source.is_file() and not source.name.startswith("."):
                    relative = source.relative_to(path)
                    yield _open_one(
                        source,
                        _target(source, relative, out),
                        identities,
                        force,
                        expected.get(relative.as_posix()),
                    )
        else:
            yield _open_one(path, _target(path, Path(path.name), out), identities, force, None)


def _target(source: Path, relative: Path, out: Path | None) -> Path:
    plain = relative.with_name(relative.name.removesuffix(f".{SEALED_EXTENSION}"))
    return source.with_name(plain.name) if out is None else out / plain


def _open_one(
    source: Path,
    target: Path,
    identities: Sequence[x25519.Identity],
    force: bool,
    expected: str | None,
) -> Opened:
    if not source.name.endswith(f".{SEALED_EXTENSION}"):
        return Opened(source, problem=f"{source} does not end in .{SEALED_EXTENSION}")
    if target.exists() and not force:
        return Opened(source, expected=expected, problem=f"{target} exists; --force replaces it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        size, sha256 = encryption.open_file(source, target, identities)
    except encryption.EncryptionError as exc:
        return Opened(source, expected=expected, problem=str(exc))
    except OSError as exc:
        return Opened(source, expected=expected, problem=f"{target}: cannot write: {exc}")
    return Opened(source, target, size, sha256, expected)


def _manifest_hashes(directory: Path) -> dict[str, str]:
    """path in the export -> the plain sha256 the ledger recorded, for sealed items."""
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return {}
    try:
        items: Iterable[dict[str, Any]] = json.loads(manifest.read_bytes())["items"]
        return {
            item["path"]: item["plain_sha256"]
            for item in items
            if item.get("path") and item.get("plain_sha256")
        }
    except (ValueError, KeyError, TypeError):
        return {}
