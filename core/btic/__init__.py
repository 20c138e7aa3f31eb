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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    __version__: str
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
    from btic.errors import (
        ConfigError,
        ConfigProblem,
        DestinationBusy,
        DestinationError,
        UsageError,
    )
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


#: Where each name of the plugin API lives: imported on first use, so that
#: ``import btic`` (which every plugin and every command does) costs next to
#: nothing; a command that never touches the session models never imports pydantic.
_LAZY = {
    # pluggy too is imported on first use: `btic --help` and `--version` need none of it
    "hookimpl": "btic.hookspecs",
    "AppContext": "btic.types",
    "Backup": "btic.types",
    "ConfigError": "btic.errors",
    "ConfigProblem": "btic.errors",
    "ConfigWarning": "btic.naming",
    "CustomAttribute": "btic.appliance.model",
    "Customer": "btic.appliance.model",
    "CustomerInfo": "btic.appliance.model",
    "DIGEST_DIRECTORY": "btic.integrity",
    "DataType": "btic.types",
    "DatabaseUrl": "btic.secrets",
    "Delivery": "btic.types",
    "DeliveryLimits": "btic.types",
    "DestinationBusy": "btic.errors",
    "DestinationError": "btic.errors",
    "DestinationState": "btic.types",
    "Digest": "btic.integrity",
    "Entity": "btic.appliance.model",
    "Event": "btic.appliance.model",
    "EventValue": "btic.appliance.model",
    "ExitSurvey": "btic.appliance.model",
    "ItemKey": "btic.types",
    "JumpGroup": "btic.appliance.model",
    "MemoryState": "btic.types",
    "NamedRef": "btic.appliance.model",
    "Placement": "btic.types",
    "PrimaryParty": "btic.appliance.model",
    "Recording": "btic.types",
    "RecordingLink": "btic.appliance.model",
    "Refusal": "btic.types",
    "Representative": "btic.appliance.model",
    "Secret": "btic.secrets",
    "Session": "btic.appliance.model",
    "SiteInfo": "btic.types",
    "StoredItem": "btic.types",
    "SurveyQuestion": "btic.appliance.model",
    "SystemInfoCategory": "btic.appliance.model",
    "Team": "btic.appliance.model",
    "TransferContext": "btic.types",
    "TransferredFile": "btic.appliance.model",
    "UsageError": "btic.errors",
    "VerifyFinding": "btic.types",
    "read_digests": "btic.integrity",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    else:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'btic' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain one
    return value


def _version() -> str:
    """The installed distribution's version (read from its metadata on first use)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("btic")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


#: The version of the plugin API: what this module, :mod:`btic.naming`,
#: :mod:`btic.plugin`, :mod:`btic.testing` and the hooks promise. A plugin may
#: declare the version it was written for (``api_version = (1, 0)`` on its class);
#: one written for a later major version is refused when it loads. Within a major
#: version nothing is removed without a minor release of deprecation warnings first.
PLUGIN_API_VERSION = (1, 0)


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
