"""What the core hands to a destination: a session report, a recording or a backup,
and the key each is known by."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from btic.appliance.model import Session
from btic.types import Backup, DataType, ItemKey, Recording, SiteInfo


@dataclass(frozen=True)
class SessionDocument:
    """A session report as ``on_session_xml`` receives it: parsed, and as sent."""

    session: Session
    xml: bytes


#: What :meth:`btic.transfer.delivery.Deliverer.deliver` hands to a destination.
Item = SessionDocument | Recording | Backup


def item_key(site: SiteInfo, data_type: DataType, item: Item) -> ItemKey:
    """The key a destination de-duplicates on (see :class:`btic.types.ItemKey`)."""
    if isinstance(item, Backup):
        return ItemKey(site.host, data_type, backup_id(item.time))
    if isinstance(item, Recording):
        return ItemKey(site.host, data_type, item.lsid, item.instance)
    return ItemKey(site.host, data_type, item.session.lsid)


def backup_id(moment: datetime) -> str:
    """A backup's id within its site: the appliance's time as ``YYYYMMDDTHHMMSSZ``."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


def size_of(item: Item) -> int:
    """An item's bytes, as a batch budget counts them."""
    return len(item.xml) if isinstance(item, SessionDocument) else item.size


def sha256_of(item: Item) -> str:
    """The sha256 of an item's bytes (a report's XML, a spooled file's, known already)."""
    if isinstance(item, SessionDocument):
        return hashlib.sha256(item.xml).hexdigest()
    return item.sha256
