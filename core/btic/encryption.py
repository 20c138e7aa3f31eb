"""Items encrypted at rest in the standard age format: backups with a passphrase,
and any item to a destination's age recipients.

The vendor's Integration Client lets a user "apply a password to any backups
created", but the Backup API takes no password, so btic cannot ask the
appliance for a protected backup. With ``backup_password`` set, btic encrypts
each backup itself before any destination sees it: the file is an age file
(``.nsb.age``, the scrypt passphrase recipient) that ``age -d`` or
``btic backup decrypt`` turns back into the appliance's bytes.

age is implemented by pyrage (the ``age`` extra). Its passphrase encryption
works in memory: encrypting a backup holds about twice its size in memory for a
moment. Encryption to recipients (X25519 public keys, ``age1...``) streams: a
destination's ``encrypt`` seals a 1 GiB recording with about 16 MB resident
(``benchmarks/seal_recording.py``), and the archiving host, which holds only the
public keys, cannot read back what it wrote.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from btic.errors import BticError

if TYPE_CHECKING:
    from pyrage import x25519

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


def _require(what: str = "encrypting backups") -> None:
    if not available():
        raise EncryptionError(f"{what} needs pyrage: {EXTRA_HINT}")


# -- recipients (X25519 public keys) ------------------------------------------------------


def parse_recipient(text: str) -> x25519.Recipient:
    """An age X25519 recipient (``age1...``).

    :raises EncryptionError: it is not one, or pyrage is not installed.
    """
    _require("encrypting to age recipients")
    from pyrage import RecipientError, x25519

    try:
        return x25519.Recipient.from_str(text.strip())
    except (RecipientError, ValueError):
        raise EncryptionError(
            f"{_shown(text)} is not an age recipient (an X25519 public key, age1..., as "
            "age-keygen -y prints it)"
        ) from None


def read_identities(path: Path) -> list[x25519.Identity]:
    """The X25519 identities of an age identity file (``AGE-SECRET-KEY-1...`` lines,
    ``#`` comments), as ``age-keygen`` writes it.

    :raises EncryptionError: the file cannot be read or holds no identity; the
        message never quotes the file's content (it is a secret).
    """
    _require("decrypting")
    from pyrage import IdentityError, x25519

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EncryptionError(f"{path}: cannot read the identity file: {exc}") from None
    identities = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(x25519.Identity.from_str(line))
        except (IdentityError, ValueError):
            raise EncryptionError(
                f"{path}: line {number} is not an age identity (AGE-SECRET-KEY-1...)"
            ) from None
    if not identities:
        raise EncryptionError(f"{path}: holds no age identity (AGE-SECRET-KEY-1...)")
    return identities


def seal_bytes(data: bytes, recipients: Sequence[x25519.Recipient]) -> bytes:
    """``data`` as an age file only the recipients' identities open (a session report)."""
    import pyrage

    try:
        return pyrage.encrypt(data, list(recipients))
    except pyrage.EncryptError as exc:
        raise EncryptionError(f"cannot encrypt: {exc}") from None


def seal_file(
    source: Path, target: Path, recipients: Sequence[x25519.Recipient]
) -> tuple[int, str]:
    """Write ``source`` to ``target`` as an age file for ``recipients``, streamed
    (memory stays flat for any size).

    :return: the size and sha256 of what was written.
    :raises OSError: ``target`` cannot be written (a full disk).
    """
    import pyrage

    with source.open("rb") as reader, target.open("wb") as out, _HashingWriter(out) as writer:
        try:
            pyrage.encrypt_io(reader, writer, list(recipients))
        except pyrage.EncryptError as exc:
            if writer.failure is not None:
                raise writer.failure from None  # pyrage wraps the disk's own error
            raise EncryptionError(f"{source}: cannot encrypt: {exc}") from None
    return writer.size, writer.sha256


def open_file(source: Path, target: Path, identities: Sequence[x25519.Identity]) -> tuple[int, str]:
    """Write the plain bytes of the age file ``source`` to ``target``, streamed: a
    temporary file beside it, renamed only once age has authenticated the whole
    file (a cut or changed file is refused, and nothing is left behind).

    :return: the plain bytes' size and sha256.
    :raises EncryptionError: a wrong identity, or not an intact age file.
    """
    _require("decrypting")
    import pyrage

    partial = target.with_name(f".{target.name}.partial")
    try:
        with source.open("rb") as reader, _private(partial) as out:
            with _HashingWriter(out) as writer:
                try:
                    pyrage.decrypt_io(reader, writer, list(identities))
                except pyrage.DecryptError as exc:
                    raise EncryptionError(
                        f"{source}: cannot decrypt ({exc}): not encrypted to this identity, "
                        "or not an age file"
                    ) from None
                except OSError as exc:
                    if writer.failure is not None or exc.errno is not None:
                        raise  # the disk's own error, writing the plain copy
                    # pyrage's word for a chunk that fails authentication: cut or changed.
                    raise EncryptionError(
                        f"{source}: cannot decrypt: its content fails authentication; it is "
                        "not an intact age file (cut short or changed)"
                    ) from None
            out.flush()
            os.fsync(out.fileno())
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return writer.size, writer.sha256


def _private(path: Path) -> io.BufferedWriter:
    """A new file only its owner may read: what it holds is evidence."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(descriptor, "wb")


def _shown(text: str) -> str:
    """A configured value as an error may quote it (short: it may be a pasted secret)."""
    text = text.strip()
    if text.startswith("AGE-SECRET-KEY-"):
        return "an age identity (a secret key)"
    return repr(text if len(text) <= 80 else text[:77] + "...")


class _HashingWriter(io.BufferedIOBase):
    """Passes writes on to a file a MiB at a time, counting them, and hashes them in
    a thread of its own: sha256 costs about half as much as age itself, and hashlib
    lets go of the GIL, so on two cores the hash is nearly free
    (``benchmarks/seal_recording.py``). Use it as a context manager: the file has
    every byte, and :attr:`sha256` is complete, once it has exited.
    """

    def __init__(self, out: io.BufferedIOBase | io.BufferedWriter) -> None:
        super().__init__()
        self._out = out
        self.size = 0
        #: the error the file raised, which pyrage may report only as text
        self.failure: OSError | None = None
        self._hash = hashlib.sha256()
        # Bounded: the hash may lag the file by a few MB, never by the whole file.
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        # pyrage writes 8 KiB at a time when it decrypts: passed on in 1 MiB lots.
        self._lot: list[bytes] = []
        self._lot_size = 0
        self._hasher = threading.Thread(target=self._digest, name="btic-sha256", daemon=True)
        self._hasher.start()

    def __enter__(self) -> _HashingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._hand_over()
        finally:
            self._chunks.put(None)
            self._hasher.join()

    def _hand_over(self) -> None:
        """Write the lot to the file (one system call a MiB: pyrage's 8 KiB writes
        would cost one each) and to the hash."""
        if not self._lot:
            return
        lot = b"".join(self._lot)
        self._lot, self._lot_size = [], 0
        try:
            self._out.write(lot)
        except OSError as exc:
            self.failure = exc
            raise
        self._chunks.put(lot)

    @property
    def sha256(self) -> str:
        if self._hasher.is_alive():
            raise RuntimeError("the hash is complete only once the writer has exited")
        return self._hash.hexdigest()

    def _digest(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._hash.update(chunk)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        # pyrage hands a new bytes object per call; anything mutable is copied.
        self._lot.append(data if isinstance(data, bytes) else bytes(data))
        self._lot_size += len(data)
        if self._lot_size >= 1 << 20:
            self._hand_over()
        self.size += len(data)
        return len(data)
