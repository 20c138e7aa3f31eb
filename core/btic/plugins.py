"""Plugin discovery, per-plugin error isolation and the capability table.

:class:`PluginManager` owns everything between "a package declared an entry
point in group ``btic``" and "destination ``archive`` received a session":

* discovery loops over the entry points itself, so one plugin that fails to
  import is reported and skipped instead of taking the CLI down;
* ``BTIC_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point name before
  their code is imported; ``BTIC_STRICT_PLUGINS=1`` re-raises load errors;
* each plugin class is checked against the hook specs when it is loaded, so a
  misspelled hook fails loudly instead of silently never being called;
* one instance per configured destination, registered alone in a pluggy
  manager of its own (pluggy still checks every call's arguments), and one
  typed method per hook (:meth:`PluginManager.on_recording`...) that calls
  exactly that destination.

Nothing is loaded at import time: the CLI calls :meth:`PluginManager.discover`.
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, cast

import pluggy
from pydantic import BaseModel

from btic import hookspecs
from btic.entry_points import DISABLE_ENV, ENTRY_POINT_GROUP, STRICT_ENV
from btic.errors import ConfigError, ConfigProblem, PluginLoadError
from btic.types import AppContext, DataType, DeliveryLimits, data_types_for_hooks

if TYPE_CHECKING:
    from btic.appliance.model import Session
    from btic.integrity import Digest
    from btic.types import (
        Backup,
        Delivery,
        Placement,
        Recording,
        Refusal,
        StoredItem,
        TransferContext,
        VerifyFinding,
    )


class PluginWarning(UserWarning):
    """Raised as a warning for plugin problems that do not stop btic."""


@dataclass
class PluginInfo:
    """One entry point of group ``btic`` and what came of loading it.

    :ivar name: the entry-point name: what ``plugin = "..."`` refers to.
    :ivar target: the entry point's ``module:attribute``.
    :ivar plugin_class: the loaded class; None when disabled or broken.
    :ivar hooks: names of the hooks the class implements.
    :ivar error: why it could not be loaded, for the user.
    """

    name: str
    distribution: str | None
    version: str | None
    target: str
    plugin_class: type[object] | None = None
    options: type[BaseModel] | None = None
    hooks: tuple[str, ...] = ()
    error: str | None = None
    disabled: bool = False

    @property
    def loaded(self) -> bool:
        return self.plugin_class is not None

    @property
    def data_types(self) -> frozenset[DataType]:
        return data_types_for_hooks(frozenset(self.hooks))

    @property
    def accepts_sealed(self) -> bool:
        """Whether the plugin stores items encrypted to age recipients as it is given
        them (its class sets ``accepts_sealed = True``): only then may its
        destinations ``encrypt``."""
        return bool(getattr(self.plugin_class, "accepts_sealed", False))

    @property
    def options_model(self) -> type[BaseModel]:
        assert self.options is not None, "only a loaded plugin has options"
        return self.options

    def describe(self) -> str:
        """``name (distribution version)`` for messages."""
        if self.distribution:
            return f"{self.name} ({self.distribution} {self.version})"
        return self.name

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "target": self.target,
            "hooks": list(self.hooks),
            "data_types": sorted(dt.value for dt in self.data_types),
            "disabled": self.disabled,
            "error": self.error,
        }


@dataclass
class _Destination:
    """A configured destination: its plugin's instance, alone in its own pluggy manager."""

    name: str
    plugin: PluginInfo
    instance: object
    options: BaseModel
    hooks: pluggy.PluginManager


class PluginManager:
    """Finds destination plugins and calls configured destinations.

    :param disabled: entry-point names not to import.
    :param strict: re-raise load errors instead of reporting them.
    :param entry_points: the entry points to consider; by default those of
        group ``btic`` in the installed distributions.
    """

    def __init__(
        self,
        *,
        disabled: Iterable[str] = (),
        strict: bool = False,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    ):
        self.disabled = frozenset(disabled)
        self.strict = strict
        self._entry_points = entry_points
        self.plugins: dict[str, PluginInfo] = {}
        self.warnings: list[str] = []
        self._discovered = False
        self._destinations: dict[str, _Destination] = {}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> PluginManager:
        """A manager configured by ``BTIC_DISABLE_PLUGINS`` and ``BTIC_STRICT_PLUGINS``."""
        environ = os.environ if environ is None else environ
        disabled = {n.strip() for n in environ.get(DISABLE_ENV, "").split(",") if n.strip()}
        strict = environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
        return cls(disabled=disabled, strict=strict)

    # -- discovery ---------------------------------------------------------

    def discover(self) -> PluginManager:
        """Load every plugin once. Safe to call again (it does nothing)."""
        if self._discovered:
            return self
        self._discovered = True
        by_name: dict[str, list[importlib.metadata.EntryPoint]] = {}
        for ep in self._iter_entry_points():
            claimants = by_name.setdefault(ep.name, [])
            if not any(_dist_name(c) == _dist_name(ep) for c in claimants):
                claimants.append(ep)
        for name, claimants in by_name.items():
            chosen = claimants[0]
            if len(claimants) > 1:
                others = ", ".join(_describe_ep(ep) for ep in claimants[1:])
                self._warn(
                    f"plugin name {name!r} is claimed by {_describe_ep(chosen)} and by "
                    f"{others}; using {_dist_name(chosen)}. Uninstall one of them."
                )
            self.plugins[name] = self._load(chosen)
        return self

    def _iter_entry_points(self) -> Iterable[importlib.metadata.EntryPoint]:
        if self._entry_points is not None:
            return self._entry_points
        return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)

    def _load(self, ep: importlib.metadata.EntryPoint) -> PluginInfo:
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
            target=ep.value,
        )
        if ep.name in self.disabled:
            info.disabled = True
            info.error = f"disabled by {DISABLE_ENV}"
            return info
        try:
            plugin_class = ep.load()
            info.hooks = self._validate_class(ep.name, plugin_class)
        except Exception as exc:
            if self.strict:
                raise
            info.error = f"{type(exc).__name__}: {exc}"
            self._warn(
                f"plugin {info.describe()} failed to load and is skipped: {info.error} "
                f"(set {STRICT_ENV}=1 to see the traceback, or {DISABLE_ENV}={ep.name} "
                "to silence this)"
            )
            return info
        info.plugin_class = plugin_class
        info.options = plugin_class.Options
        return info

    def _validate_class(self, name: str, plugin_class: Any) -> tuple[str, ...]:
        if not isinstance(plugin_class, type):
            raise PluginLoadError(f"entry point must name a class, not {plugin_class!r}")
        options = getattr(plugin_class, "Options", None)
        if not (isinstance(options, type) and issubclass(options, BaseModel)):
            raise PluginLoadError(f"{plugin_class.__qualname__}.Options must be a pydantic model")
        if options.model_config.get("extra") != "forbid":
            raise PluginLoadError(
                f"{plugin_class.__qualname__}.Options must set "
                "model_config = ConfigDict(extra='forbid') so misspelled settings are reported"
            )
        # A throwaway manager: registering the class validates every hookimpl's
        # arguments against its spec, and check_pending catches hook names
        # that match no spec (a typo would otherwise never be called).
        probe = self._new_pluggy_manager()
        try:
            probe.register(plugin_class, name=name)
            probe.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(str(exc)) from None
        hooks = sorted(caller.name for caller in probe.get_hookcallers(plugin_class) or [])
        if not hooks:
            raise PluginLoadError(f"{plugin_class.__qualname__} implements no btic hook")
        limits = getattr(plugin_class, "limits", None)
        if limits is not None and not isinstance(limits, DeliveryLimits):
            raise PluginLoadError(
                f"{plugin_class.__qualname__}.limits must be a btic.DeliveryLimits, not {limits!r}"
            )
        sealed = getattr(plugin_class, "accepts_sealed", False)
        if not isinstance(sealed, bool):
            raise PluginLoadError(
                f"{plugin_class.__qualname__}.accepts_sealed must be True or False, not {sealed!r}"
            )
        _check_api_version(plugin_class)
        return tuple(hooks)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, PluginWarning, stacklevel=3)

    @staticmethod
    def _new_pluggy_manager() -> pluggy.PluginManager:
        manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        return manager

    # -- lookups -------------------------------------------------------------

    def get(self, name: str) -> PluginInfo:
        """The loaded plugin ``name``.

        :raises ConfigError: naming the installed plugins, or why this one
            did not load.
        """
        self.discover()
        info = self.plugins.get(name)
        if info is None:
            raise ConfigError(
                f"no installed plugin {name!r}; installed: "
                f"{', '.join(self.loaded_names()) or 'none'}"
            )
        if not info.loaded:
            raise ConfigError(f"plugin {info.describe()} is not usable: {info.error}")
        return info

    def loaded_names(self) -> list[str]:
        self.discover()
        return sorted(n for n, info in self.plugins.items() if info.loaded)

    # -- destinations --------------------------------------------------------

    def add_destination(
        self, name: str, plugin_name: str, options: BaseModel, app: AppContext
    ) -> None:
        """Make and configure the instance for destination ``name``; one already
        configured with the same plugin and options is kept, so runs that overlap
        in one process (a daemon's schedules) share it, batches and all.

        :raises ConfigError: from the plugin's ``on_configure``, with the
            destination's config path.
        """
        info = self.get(plugin_name)
        known = self._destinations.get(name)
        if known is not None and known.plugin is info and known.options == options:
            return
        self.remove_destination(name)  # configuring anew replaces the instance
        assert info.plugin_class is not None  # get() returns loaded plugins only
        instance = info.plugin_class()
        hooks = self._new_pluggy_manager()
        hooks.register(instance, name=name)
        self._destinations[name] = _Destination(name, info, instance, options, hooks)
        try:
            self._call(name, "on_configure", destination=name, options=options, app=app)
        except ConfigError as exc:
            self._retire(name, close=False)  # never configured: nothing to close
            raise ConfigError(
                [
                    ConfigProblem(
                        f"destinations.{name}" + (f".{p.path}" if p.path else ""), p.message
                    )
                    for p in exc.problems
                ]
            ) from None

    def remove_destination(self, name: str) -> None:
        """Retire destination ``name``'s instance (its ``on_close`` first)."""
        self._retire(name, close=True)

    def _retire(self, name: str, *, close: bool) -> None:
        destination = self._destinations.get(name)
        if destination is None:
            return
        if close and "on_close" in destination.plugin.hooks:
            try:
                self._call(name, "on_close")
            except Exception as exc:  # noqa: BLE001 - the work is done; a plugin's bug is logged
                self._warn(f"destination {name}: on_close failed: {type(exc).__name__}: {exc}")
        del self._destinations[name]

    def close(self) -> None:
        """Retire every destination (``on_close`` of each): the process is done with them."""
        for name in list(self._destinations):
            self.remove_destination(name)

    def limits(self, destination: str) -> DeliveryLimits:
        """How ``destination`` wants its items handed over: its instance's ``limits``
        (set in ``on_configure``), else its class's, else the defaults.

        :raises PluginLoadError: when the instance set something else.
        """
        limits = getattr(self._destinations[destination].instance, "limits", None)
        if limits is None:
            return DeliveryLimits()
        if not isinstance(limits, DeliveryLimits):
            raise PluginLoadError(
                f"destination {destination}: its plugin's limits must be a "
                f"btic.DeliveryLimits, not {limits!r}"
            )
        return limits

    # -- the plugins' own commands ----------------------------------------------

    def commands(self, taken: Iterable[str] = ()) -> dict[str, Any]:
        """The ``click`` commands the installed plugins add (``register_commands``),
        by name. A name in ``taken`` (btic's own) or added by an earlier plugin is
        refused with a warning, and so is a plugin whose hook fails (re-raised when
        strict)."""
        import click

        found: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for info in self.plugins.values():
            if not info.loaded or "register_commands" not in info.hooks:
                continue
            assert info.plugin_class is not None
            group = click.Group()
            hooks = self._new_pluggy_manager()
            hooks.register(info.plugin_class(), name=info.name)
            try:
                hooks.hook.register_commands(cli=group)
            except Exception as exc:
                if self.strict:
                    raise
                self._warn(
                    f"plugin {info.describe()}: register_commands failed, its commands are "
                    f"left out: {type(exc).__name__}: {exc}"
                )
                continue
            for name, command in group.commands.items():
                if name in taken or name in found:
                    owner = "btic" if name in taken else f"plugin {owners[name]}"
                    self._warn(
                        f"plugin {info.describe()}: command {name!r} is {owner}'s already; "
                        "not added"
                    )
                    continue
                found[name] = command
                owners[name] = info.name
        return found

    def can_receive(self, destination: str, data_type: DataType) -> bool:
        return data_type in self._destinations[destination].plugin.data_types

    # -- the hooks, one typed method each --------------------------------------
    #
    # Each destination has a pluggy manager of its own (see hookspecs), so each
    # method names the destination and returns its answer.

    def on_check(self, destination: str) -> str | None:
        """What ``on_check`` tested; None when the plugin has no such hook."""
        if "on_check" not in self._destinations[destination].plugin.hooks:
            return None
        return cast("str | None", self._call(destination, "on_check"))

    def on_session_xml(
        self, destination: str, *, session: Session, xml: bytes, ctx: TransferContext
    ) -> Delivery | None:
        result = self._call(destination, "on_session_xml", session=session, xml=xml, ctx=ctx)
        return cast("Delivery | None", result)

    def on_recording(
        self, destination: str, *, recording: Recording, ctx: TransferContext
    ) -> Delivery | None:
        result = self._call(destination, "on_recording", recording=recording, ctx=ctx)
        return cast("Delivery | None", result)

    def on_backup(
        self, destination: str, *, backup: Backup, ctx: TransferContext
    ) -> Delivery | None:
        return cast("Delivery | None", self._call(destination, "on_backup", backup=backup, ctx=ctx))

    def can_flush(self, destination: str) -> bool:
        """Whether the destination batches items (it implements ``on_flush``)."""
        return "on_flush" in self._destinations[destination].plugin.hooks

    def on_flush(self, destination: str) -> list[Refusal]:
        """The items of the destination's batch it could not store (none when it
        does not batch).

        :raises DestinationError: the batch could not be stored at all.
        """
        if not self.can_flush(destination):
            return []
        refusals = self._call(destination, "on_flush")
        return list(cast("Iterable[Refusal]", refusals or ()))

    def on_locate(
        self, destination: str, *, session: Session, ctx: TransferContext
    ) -> Placement | None:
        """Where the destination would put ``session``; None when it cannot say."""
        if "on_locate" not in self._destinations[destination].plugin.hooks:
            return None
        return cast(
            "Placement | None", self._call(destination, "on_locate", session=session, ctx=ctx)
        )

    def on_verify(
        self, destination: str, *, items: Iterable[StoredItem]
    ) -> Iterator[VerifyFinding]:
        """The destination's findings about ``items``.

        :raises LookupError: when its plugin has no ``on_verify``.
        """
        if "on_verify" not in self._destinations[destination].plugin.hooks:
            raise LookupError(destination)
        findings = self._call(destination, "on_verify", items=items)
        return iter(cast("Iterable[VerifyFinding]", findings or ()))

    def can_remove(self, destination: str) -> bool:
        """Whether the destination can delete items (its plugin implements ``on_remove``)."""
        return "on_remove" in self._destinations[destination].plugin.hooks

    def on_remove(self, destination: str, *, item: StoredItem) -> None:
        """Delete ``item`` from ``destination``.

        :raises LookupError: when its plugin has no ``on_remove``.
        """
        if not self.can_remove(destination):
            raise LookupError(destination)
        self._call(destination, "on_remove", item=item)

    def can_hold(self, destination: str) -> bool:
        """Whether the destination keeps legal holds of its own (``on_hold``)."""
        return "on_hold" in self._destinations[destination].plugin.hooks

    def on_hold(self, destination: str, *, item: StoredItem, held: bool) -> bool:
        """Place or lift ``item``'s hold at ``destination``; False when it keeps none.

        :raises LookupError: when its plugin has no ``on_hold``.
        """
        if not self.can_hold(destination):
            raise LookupError(destination)
        return bool(self._call(destination, "on_hold", item=item, held=held))

    def can_open(self, destination: str) -> bool:
        return "on_open" in self._destinations[destination].plugin.hooks

    def on_open(self, destination: str, *, item: StoredItem) -> IO[bytes]:
        """``item``'s bytes as ``destination`` stored them.

        :raises LookupError: when its plugin has no ``on_open``.
        """
        if not self.can_open(destination):
            raise LookupError(destination)
        return cast("IO[bytes]", self._call(destination, "on_open", item=item))

    def can_digest(self, destination: str) -> bool:
        """Whether the destination keeps digests (``on_digest`` and ``on_digests``)."""
        hooks = self._destinations[destination].plugin.hooks
        return "on_digest" in hooks and "on_digests" in hooks

    def on_digest(self, destination: str, *, digest: Digest) -> str | None:
        return cast("str | None", self._call(destination, "on_digest", digest=digest))

    def on_digests(self, destination: str) -> Iterator[Digest]:
        return iter(cast("Iterable[Digest]", self._call(destination, "on_digests") or ()))

    def on_list(self, destination: str) -> Iterator[str] | None:
        """Every location the destination holds; None when its plugin cannot list."""
        if "on_list" not in self._destinations[destination].plugin.hooks:
            return None
        listed = self._call(destination, "on_list")
        return iter(cast("Iterable[str]", listed or ()))

    def _call(self, destination: str, hook: str, /, **kwargs: Any) -> Any:
        """Call ``hook`` on one destination and return its result."""
        return getattr(self._destinations[destination].hooks.hook, hook)(**kwargs)


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist else ep.value


def _describe_ep(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ep.value
    return f"{dist.name} {dist.version} ({ep.value})"


def _check_api_version(plugin_class: type) -> None:
    """Refuse a plugin written for a later version of the plugin API (major or minor:
    a later minor one may use hooks this btic lacks).

    A plugin says which version it was written for with ``api_version = (1, 0)``
    on its class; one that says nothing is taken to be written for this one.
    """
    import btic  # the package's __init__, done by the time a plugin loads

    declared = getattr(plugin_class, "api_version", None)
    if declared is None:
        return
    if not (
        isinstance(declared, tuple)
        and len(declared) == 2
        and all(isinstance(part, int) for part in declared)
    ):
        raise PluginLoadError(
            f"{plugin_class.__qualname__}.api_version must be (major, minor), as (1, 0); "
            f"not {declared!r}"
        )
    major, minor = btic.PLUGIN_API_VERSION
    if declared[0] > major or (declared[0] == major and declared[1] > minor):
        raise PluginLoadError(
            f"written for btic's plugin API {declared[0]}.{declared[1]}; this btic "
            f"{btic.__version__} has {major}.{minor}: upgrade btic"
        )
