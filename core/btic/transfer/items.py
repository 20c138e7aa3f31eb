"""What the core hands to a destination: a session report, a recording or a backup."""

from __future__ import annotations

from dataclasses import dataclass

from btic.appliance.model import Session
from btic.types import Backup, Recording


@dataclass(frozen=True)
class SessionDocument:
    """A session report as ``on_session_xml`` receives it: parsed, and as sent."""

    session: Session
    xml: bytes


#: What :meth:`btic.transfer.delivery.Deliverer.deliver` hands to a destination.
Item = SessionDocument | Recording | Backup
