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

from btic.appliance.model import (
    CustomAttribute,
    Customer,
    CustomerInfo,
    Entity,
    Event,
    EventValue,
    ExitSurvey,
    JumpGroup,
    NamedRef,
    PrimaryParty,
    RecordingLink,
    Representative,
    Session,
    SurveyQuestion,
    SystemInfoCategory,
    Team,
    TransferredFile,
)
from btic.errors import ConfigError, ConfigProblem, DestinationBusy, DestinationError, UsageError
from btic.hookspecs import hookimpl
from btic.integrity import DIGEST_DIRECTORY, Digest, read_digests
from btic.naming import ConfigWarning
from btic.secrets import DatabaseUrl, Secret
from btic.types import (
    AppContext,
    Backup,
    DataType,
    Delivery,
    DeliveryLimits,
    DestinationState,
    ItemKey,
    MemoryState,
    Placement,
    Recording,
    Refusal,
    SiteInfo,
    StoredItem,
    TransferContext,
    VerifyFinding,
)

#: The version of the plugin API: what this module, :mod:`btic.naming`,
#: :mod:`btic.plugin`, :mod:`btic.testing` and the hooks promise. A plugin may
#: declare the version it was written for (``api_version = (1, 0)`` on its class);
#: one written for a later major version is refused when it loads. Within a major
#: version nothing is removed without a minor release of deprecation warnings first.
PLUGIN_API_VERSION = (1, 0)

try:
    __version__ = version("btic")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "DIGEST_DIRECTORY",
    "PLUGIN_API_VERSION",
    "AppContext",
    "Backup",
    "ConfigError",
    "ConfigProblem",
    "ConfigWarning",
    "CustomAttribute",
    "Customer",
    "CustomerInfo",
    "DataType",
    "DatabaseUrl",
    "Delivery",
    "DeliveryLimits",
    "DestinationBusy",
    "DestinationError",
    "DestinationState",
    "Digest",
    "Entity",
    "Event",
    "EventValue",
    "ExitSurvey",
    "ItemKey",
    "JumpGroup",
    "MemoryState",
    "NamedRef",
    "Placement",
    "PrimaryParty",
    "Recording",
    "RecordingLink",
    "Refusal",
    "Representative",
    "Secret",
    "Session",
    "SiteInfo",
    "StoredItem",
    "SurveyQuestion",
    "SystemInfoCategory",
    "Team",
    "TransferContext",
    "TransferredFile",
    "UsageError",
    "VerifyFinding",
    "__version__",
    "hookimpl",
    "read_digests",
]
