"""Items sealed to a destination's age recipients before its plugin sees them.

A destination with ``encrypt = { recipients = [...] }`` is handed, for each data
type the rule names, an age file instead of the item's bytes: a session report's
XML in memory, a recording's or backup's file as a sealed copy beside it in the
spool. Each destination gets its own copy (its own recipients, its own file key).
The plaintext's sha256, known before sealing, goes to the ledger beside the
sha256 of what was stored, so an auditor who decrypts an item can check it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from btic import encryption
from btic.appliance.downloads import spool_writes
from btic.config.rules import Sealing
from btic.naming import SEALED_EXTENSION
from btic.transfer.items import Item, SessionDocument, sha256_of
from btic.types import Backup, DataType, Recording

if TYPE_CHECKING:
    from pyrage import x25519


@dataclass(frozen=True)
class Sealed:
    """An item as handed to one destination.

    :ivar item: what the plugin is given: sealed, or the item itself.
    :ivar plain_sha256: the sha256 of the plaintext when ``item`` is sealed; None
        when it is not.
    """

    item: Item
    plain_sha256: str | None = None

    @property
    def sealed(self) -> bool:
        return self.plain_sha256 is not None


class Sealer:
    """Seals items for the destinations whose rules ask for it.

    :param rules: destination name -> its ``encrypt`` rule.
    """

    def __init__(self, rules: Mapping[str, Sealing]):
        self._rules = dict(rules)
        self._recipients: dict[str, list[x25519.Recipient]] = {}

    def seals(self, destination: str, data_type: DataType) -> bool:
        rule = self._rules.get(destination)
        return rule is not None and rule.seals(data_type)

    @contextmanager
    def handed(self, destination: str, data_type: DataType, item: Item) -> Iterator[Sealed]:
        """``item`` as ``destination`` is to be given it. A sealed copy of a file lives
        in the item's spool directory until the hand-over is done.

        :raises SpoolError: the spool cannot take the sealed copy (a full disk).
        """
        if not self.seals(destination, data_type):
            yield Sealed(item)
            return
        recipients = self._recipients_of(destination)
        if isinstance(item, (Recording, Backup)):
            with _sealed_file(item, recipients) as sealed:
                yield sealed
            return
        sealed_xml = encryption.seal_bytes(item.xml, recipients)
        yield Sealed(SessionDocument(item.session, sealed_xml), sha256_of(item))

    def _recipients_of(self, destination: str) -> list[x25519.Recipient]:
        if destination not in self._recipients:
            self._recipients[destination] = [
                encryption.parse_recipient(text) for text in self._rules[destination].recipients
            ]
        return self._recipients[destination]


@contextmanager
def _sealed_file(item: Recording | Backup, recipients: list[x25519.Recipient]) -> Iterator[Sealed]:
    directory = item.path.parent
    with spool_writes(directory):
        descriptor, name = tempfile.mkstemp(
            prefix=".sealed-", suffix=f".{SEALED_EXTENSION}", dir=directory
        )
        os.close(descriptor)
    target = Path(name)
    try:
        with spool_writes(directory):
            size, sha256 = encryption.seal_file(item.path, target, recipients)
        sealed = replace(
            item,
            extension=f"{item.extension}.{SEALED_EXTENSION}",
            size=size,
            sha256=sha256,
            path=target,
        )
        yield Sealed(sealed, sha256_of(item))
    finally:
        target.unlink(missing_ok=True)
