"""What the client knows of a site and hands back: settings, API info, downloads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

from lxml import etree

from btic.appliance.model import Product
from btic.appliance.xmlnames import children
from btic.errors import ReportError
from btic.secrets import Secret


@dataclass(frozen=True)
class ApiInfo:
    """``get_api_info``: version, the appliance's clock, the account's permissions."""

    api_version: str
    company_name: str | None
    timestamp: datetime
    permissions: dict[str, str]

    def allows(self, permission: str) -> bool:
        return self.permissions.get(permission, "0") not in ("0", "deny", "")

    @property
    def product(self) -> Product:
        """RS accounts have ``perm_reporting_support``; PA accounts ``perm_reporting``."""
        if (
            "perm_reporting" in self.permissions
            and "perm_reporting_support" not in self.permissions
        ):
            return "pa"
        return "rs"


def read_api_info(root: etree._Element, site: str) -> ApiInfo:
    """The ``get_api_info`` answer's document as :class:`ApiInfo`.

    :raises ReportError: without a ``<timestamp>``, or with one that is not a time
        (btic reads the appliance's clock from it).
    """
    values: dict[str, Any] = {"permissions": {}}
    for name, child in children(root):
        if name == "api_version":
            values["api_version"] = (child.text or "").strip()
        elif name == "company_name":
            values["company_name"] = (child.text or "").strip() or None
        elif name == "timestamp":
            values["timestamp"] = _timestamp(child.text, site)
        elif name == "permissions":
            for _, permission in children(child):
                values["permissions"][permission.get("name", "")] = (permission.text or "").strip()
    if "timestamp" not in values:
        raise ReportError(site, f"site {site}: get_api_info answered without a <timestamp>")
    values.setdefault("api_version", "unknown")
    values.setdefault("company_name", None)
    return ApiInfo(**values)


def _timestamp(text: str | None, site: str) -> datetime:
    try:
        return datetime.fromtimestamp(int((text or "").strip()), timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise ReportError(
            site,
            f"site {site}: get_api_info answered a <timestamp> that is not a time: "
            f"{(text or '')[:40]!r}",
        ) from None


@dataclass(frozen=True)
class Download:
    """A recording or backup on local disk, complete and verified."""

    path: Path
    size: int
    sha256: str
    extension: str
    filename: str | None


class SiteSettings(Protocol):
    """What the client needs of a site: a :class:`btic.config.SiteConfig`, or a
    :class:`SiteConnection` made by hand."""

    @property
    def host(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def client_secret(self) -> Secret: ...
    @property
    def scheme(self) -> str: ...
    @property
    def verify_tls(self) -> bool: ...
    @property
    def ca_bundle(self) -> Path | None: ...
    @property
    def keep_alive(self) -> bool: ...
    @property
    def timeout(self) -> float: ...
    @property
    def product(self) -> Literal["rs", "pa", "auto"]: ...


@dataclass(frozen=True)
class SiteConnection:
    """Connection settings for a client made without a configuration file."""

    host: str
    client_id: str
    client_secret: Secret
    scheme: str = "https"
    verify_tls: bool = True
    ca_bundle: Path | None = None
    keep_alive: bool = False
    timeout: float = 60.0
    product: Literal["rs", "pa", "auto"] = "auto"
