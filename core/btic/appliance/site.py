"""What the client knows of a site and hands back: settings, API info, downloads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from btic.appliance.model import Product
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


@dataclass(frozen=True)
class Download:
    """A recording or backup on local disk, complete and verified."""

    path: Path
    size: int
    sha256: str
    extension: str
    filename: str | None
    #: False when the answer had no Content-Length and was not chunked: nothing
    #: told where the body should end, so a cut could pass for the end.
    verified: bool = True


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
