"""Backups encrypted at rest with a passphrase, in the standard age format.

The vendor's Integration Client lets a user "apply a password to any backups
created", but the Backup API takes no password, so btic cannot ask the
appliance for a protected backup. With ``backup_password`` set, btic encrypts
each backup itself before any destination sees it: the file is an age file
(``.nsb.age``, the scrypt passphrase recipient) that ``age -d`` or
``btic backup decrypt`` turns back into the appliance's bytes.

age is implemented by pyrage (the ``age`` extra), which encrypts in memory:
encrypting a backup holds about twice its size in memory for a moment.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from btic.errors import BticError

EXTENSION = "age"
EXTRA_HINT = "install the age extra: pip install 'btic[age]'"


class EncryptionError(BticError):
    """A backup could not be encrypted or decrypted."""


def available() -> bool:
    """Whether pyrage is installed."""
    return importlib.util.find_spec("pyrage") is not None


def encrypt_file(source: Path, target: Path, passphrase: str) -> tuple[int, str]:
    """Write ``source`` encrypted with ``passphrase`` to ``target``.

    :return: the size and sha256 of what was written.
    """
    _require()
    import pyrage

    try:
        sealed = pyrage.passphrase.encrypt(source.read_bytes(), passphrase)
    except pyrage.EncryptError as exc:
        raise EncryptionError(f"{source}: cannot encrypt: {exc}") from None
    target.write_bytes(sealed)
    return len(sealed), hashlib.sha256(sealed).hexdigest()


def decrypt_file(source: Path, target: Path, passphrase: str) -> int:
    """Write the plain bytes of the age file ``source`` to ``target``; return their size."""
    _require()
    import pyrage

    try:
        plain = pyrage.passphrase.decrypt(source.read_bytes(), passphrase)
    except pyrage.DecryptError as exc:
        raise EncryptionError(
            f"{source}: cannot decrypt ({exc}): a wrong passphrase, or not an age file"
        ) from None
    target.write_bytes(plain)
    return len(plain)


def _require() -> None:
    if not available():
        raise EncryptionError(f"encrypting backups needs pyrage: {EXTRA_HINT}")
