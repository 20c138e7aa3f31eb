"""btic: archive BeyondTrust session reports, recordings and backups.

Plugin authors import from here::

    import btic

    class MyDestination:
        class Options(pydantic.BaseModel):
            model_config = pydantic.ConfigDict(extra="forbid")
            ...

        @btic.hookimpl
        def on_session_xml(self, session, xml, ctx): ...
"""

from importlib.metadata import PackageNotFoundError, version

from btic.appliance.model import Session
from btic.errors import ConfigError, ConfigProblem, DestinationError
from btic.hookspecs import hookimpl
from btic.secrets import Secret
from btic.types import (
    AppContext,
    Backup,
    DataType,
    Delivery,
    Placement,
    Recording,
    Refusal,
    SiteInfo,
    StoredItem,
    TransferContext,
    VerifyFinding,
)

try:
    __version__ = version("btic")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "AppContext",
    "Backup",
    "ConfigError",
    "ConfigProblem",
    "DataType",
    "Delivery",
    "DestinationError",
    "Placement",
    "Recording",
    "Refusal",
    "Secret",
    "Session",
    "SiteInfo",
    "StoredItem",
    "TransferContext",
    "VerifyFinding",
    "__version__",
    "hookimpl",
]
