"""The configuration file: TOML -> validated models, with every problem at once.

:func:`load_config` reads one TOML file, validates each section, validates each
destination's options against its plugin's ``Options`` model, resolves secret
references and cross-checks the sections against each other. It reports every
problem it finds together, each with its config path and what is allowed, as
one :class:`btic.ConfigError`, so a user fixes a file in one pass.
"""

from __future__ import annotations

import os
import stat
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from btic.config.consistency import (
    capability_problems,
    check_names,
    check_references,
    check_sites,
    distributed_problems,
    site_warnings,
)
from btic.config.problems import problems_from, salvage
from btic.config.rules import Sealing, retention_rules, sealing_rule
from btic.config.sections import (
    ConfigFile,
    ExecutorConfig,
    IntegrityConfig,
    LoggingConfig,
    NotificationsConfig,
    ScheduleConfig,
    ServeConfig,
    SiteConfig,
    StateConfig,
    format_duration,
)
from btic.errors import ConfigError, ConfigProblem, UsageError
from btic.naming import ConfigWarning
from btic.plugins import PluginManager
from btic.secrets import Secret
from btic.types import AppContext, DataType, SiteInfo, default_logger

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_ENV = "BTIC_CONFIG"
DEFAULT_CONFIG_NAME = "btic.toml"
DEFAULT_STATE_NAME = "btic-state.db"


@dataclass(frozen=True)
class DestinationConfig:
    """``[destinations.NAME]``: a plugin and its validated options."""

    name: str
    plugin: str
    options: BaseModel
    warnings: tuple[str, ...] = ()
    #: how long items of each data type are kept there (``retention = {...}``)
    retention: Mapping[DataType, timedelta] = field(default_factory=dict)
    #: which items are encrypted to age recipients before the plugin sees them (``encrypt = {...}``)
    sealing: Sealing | None = None


@dataclass
class Config:
    """A validated configuration.

    :ivar path: the file it was read from (None when built in memory).
    :ivar base_dir: relative paths in the file are relative to this.
    :ivar warnings: problems that do not stop btic but that a user should
        see (literal secrets in a readable file, TLS verification off).
    """

    path: Path | None
    base_dir: Path
    state: StateConfig
    sites: dict[str, SiteConfig]
    destinations: dict[str, DestinationConfig]
    schedules: dict[str, ScheduleConfig]
    logging: LoggingConfig
    notifications: NotificationsConfig
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    integrity: IntegrityConfig = field(default_factory=IntegrityConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    warnings: list[str] = field(default_factory=list)

    @property
    def state_url(self) -> str:
        if self.state.url is not None:
            return self.state.url.get_secret_value()
        return f"sqlite:///{self.base_dir / DEFAULT_STATE_NAME}"

    def secret_problems(self) -> list[ConfigProblem]:
        """Every secret that cannot be read now (a variable not set, a file not
        readable), with its config path."""
        found = [(where, secret.problem()) for where, secret in iter_secrets(self)]
        return [ConfigProblem(where, problem) for where, problem in found if problem is not None]

    def require_secrets(self) -> None:
        """For commands that talk to appliances or destinations: every secret can
        be read, or all that cannot are reported at once.

        :raises ConfigError: listing them.
        """
        problems = self.secret_problems()
        if problems:
            raise ConfigError(problems, self.path)

    @property
    def log_directory(self) -> Path:
        directory = self.logging.directory or Path("logs")
        return directory if directory.is_absolute() else self.base_dir / directory

    def summary(self) -> dict[str, Any]:
        """The configuration as plain data with every secret redacted."""
        return {
            "config": str(self.path) if self.path else None,
            "state": {"url": self.state.url.display if self.state.url else self.state_url},
            "sites": {n: s.model_dump(mode="json") for n, s in self.sites.items()},
            "destinations": {
                n: {"plugin": d.plugin, **d.options.model_dump(mode="json")}
                for n, d in self.destinations.items()
            },
            "schedules": {
                n: {
                    **s.model_dump(mode="json", exclude={"every", "at"}),
                    "every": format_duration(s.every),
                    "at": s.at.strftime("%H:%M") if s.at else None,
                }
                for n, s in self.schedules.items()
            },
            "logging": self.logging.model_dump(mode="json"),
            "notifications": self.notifications.model_dump(mode="json"),
            "executor": {
                **self.executor.model_dump(
                    mode="json", exclude={"broker_url", "result_backend", "visibility_timeout"}
                ),
                "broker_url": self.executor.broker_url.display
                if self.executor.broker_url
                else None,
                "visibility_timeout": format_duration(self.executor.visibility_timeout),
            },
        }

    # -- what a command names must exist --------------------------------------------

    def require(
        self,
        *,
        sites: Iterable[str] = (),
        destinations: Iterable[str] = (),
        schedules: Iterable[str] = (),
    ) -> None:
        """Check that names given on the command line are defined.

        :raises UsageError: naming what is missing and what is defined.
        """
        for kind, given, defined in (
            ("site", sites, self.sites),
            ("destination", destinations, self.destinations),
            ("schedule", schedules, self.schedules),
        ):
            missing = [name for name in given if name not in defined]
            if missing:
                raise UsageError(
                    f"no {kind} named {', '.join(map(repr, missing))}; defined: "
                    f"{', '.join(defined) or 'none'}"
                )

    def site_info(self, name: str) -> SiteInfo:
        """What a plugin may know of site ``name``; a name the configuration does not
        have (reports imported from an unconfigured appliance are ledgered under its
        host) stands for itself, as an RS appliance."""
        configured = self.sites.get(name)
        if configured is None:
            return SiteInfo(name, name, "rs")
        return SiteInfo(name, configured.host, "pa" if configured.product == "pa" else "rs")

    def configure_destination(
        self, plugins: PluginManager, name: str, log: FilteringBoundLogger | None = None
    ) -> None:
        """Make destination ``name``'s plugin instance and run its ``on_configure``.

        :raises ConfigError: from ``on_configure``, with the destination's path.
        """
        from btic import __version__

        app = AppContext(config_dir=self.base_dir, version=__version__, log=log or default_logger())
        destination = self.destinations[name]
        plugins.add_destination(name, destination.plugin, destination.options, app)

    def require_work(self) -> None:
        """Check that the configuration asks for anything at all.

        :raises UsageError: for a configuration without sites or schedules, which
            would otherwise pass for valid and do nothing, silently.
        """
        missing = [
            f"no [{section}.NAME] section"
            for section, present in (("sites", self.sites), ("schedules", self.schedules))
            if not present
        ]
        if missing:
            raise UsageError(
                f"{self.path or 'the configuration'}: nothing to do: {' and '.join(missing)}; "
                "btic init writes a starting point"
            )

    def require_distributed(self) -> None:
        """Check that this configuration can run its transfers on Celery workers.

        :raises ConfigError: naming each key that cannot serve (no broker, a
            SQLite state database).
        """
        problems = distributed_problems(self)
        if problems:
            raise ConfigError(problems)

    def check_capabilities(
        self, plugins: PluginManager, destinations: Iterable[str], data_types: Iterable[DataType]
    ) -> None:
        """Check that each destination's plugin can receive each data type.

        :raises UsageError: with one line per destination and data type it cannot take.
        """
        problems = [
            problem
            for name in destinations
            for problem in capability_problems(
                plugins, name, self.destinations[name].plugin, data_types
            )
        ]
        if problems:
            raise UsageError(*problems)


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)


def load_config(
    path: str | os.PathLike[str],
    plugins: PluginManager,
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate the configuration file at ``path``.

    :param plugins: discovered plugins, whose ``Options`` validate the
        destinations.
    :param environ: where ``env:`` references look (the process environment
        by default).
    :raises ConfigError: with every problem found.
    """
    path = Path(path)
    try:
        config = _load(path, plugins, environ)
    except ConfigError as exc:
        raise ConfigError(exc.problems, source=path) from None
    config.warnings.extend(_file_permission_warnings(path, config))
    return config


def _load(path: Path, plugins: PluginManager, environ: Mapping[str, str] | None) -> Config:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such configuration file; create one with `btic init {path}`"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return build_config(data, plugins, base_dir=path.resolve().parent, environ=environ, path=path)


def build_config(
    data: Mapping[str, Any],
    plugins: PluginManager,
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Config:
    """Validate configuration ``data`` (already parsed from TOML)."""
    context = {"environ": os.environ if environ is None else environ, "base_dir": base_dir}
    problems: list[ConfigProblem] = []
    try:
        parsed = ConfigFile.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(problems_from(exc, ConfigFile))
        parsed = salvage(data, context)

    destinations: dict[str, DestinationConfig] = {}
    for name, section in parsed.destinations.items():
        destination = _validate_destination(
            name, section, plugins, context, problems, floor=parsed.retention.floor
        )
        if destination is not None:
            destinations[name] = destination

    config = Config(
        path=path,
        base_dir=base_dir,
        state=parsed.state,
        sites=parsed.sites,
        destinations=destinations,
        schedules=parsed.schedules,
        logging=parsed.logging,
        notifications=parsed.notifications,
        executor=parsed.executor,
        integrity=parsed.integrity,
        serve=parsed.serve,
    )
    declared = {
        section: set(data[section]) if isinstance(data.get(section), Mapping) else set()
        for section in ("sites", "destinations", "schedules")
    }
    problems.extend(check_names(declared))
    problems.extend(check_references(config, declared, plugins))
    problems.extend(check_sites(config))
    if config.executor.kind != "local":
        problems.extend(distributed_problems(config))
    for where, secret in iter_secrets(config):
        secret.where = where
    if problems:
        # Every problem at once: the secrets that cannot be read now too.
        raise ConfigError(problems + config.secret_problems())
    config.warnings.extend(site_warnings(config))
    for destination in destinations.values():
        config.warnings.extend(destination.warnings)
    return config


def _validate_destination(
    name: str,
    section: Mapping[str, Any],
    plugins: PluginManager,
    context: dict[str, Any],
    problems: list[ConfigProblem],
    *,
    floor: timedelta,
) -> DestinationConfig | None:
    where = f"destinations.{name}"
    if not isinstance(section, Mapping):
        problems.append(ConfigProblem(where, "must be a table of settings"))
        return None
    options = dict(section)
    plugin_name = options.pop("plugin", None)
    retention = retention_rules(where, options.pop("retention", {}), floor, problems)
    sealing = sealing_rule(where, options.pop("encrypt", None), context["base_dir"], problems)
    if not isinstance(plugin_name, str) or not plugin_name:
        installed = ", ".join(plugins.loaded_names()) or "none installed"
        problems.append(ConfigProblem(f"{where}.plugin", f"is required; one of: {installed}"))
        return None
    try:
        info = plugins.get(plugin_name)
    except ConfigError as exc:
        problems.append(ConfigProblem(f"{where}.plugin", str(exc)))
        return None
    if retention and "on_remove" not in info.hooks:
        problems.append(
            ConfigProblem(
                f"{where}.retention",
                f"plugin {plugin_name} cannot delete items (it has no on_remove hook); "
                "remove the rules, or keep this archive by other means",
            )
        )
    if sealing is not None and not info.accepts_sealed:
        problems.append(
            ConfigProblem(
                f"{where}.encrypt",
                f"plugin {plugin_name} does not store encrypted items (it keeps what it is "
                "given in its own form, rows or events, not as files); remove encrypt, or "
                "encrypt in a file system or S3 destination",
            )
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        try:
            # An option may contradict the destination's rules (an S3 object lock
            # longer than retention): its validators see them in the context.
            validated = info.options_model.model_validate(
                options, context={**context, "retention": retention}
            )
        except ValidationError as exc:
            problems.extend(problems_from(exc, info.options_model, prefix=where))
            return None
    notes = list(
        dict.fromkeys(
            f"{where}: {w.message}" for w in caught if issubclass(w.category, ConfigWarning)
        )
    )
    return DestinationConfig(
        name=name,
        plugin=plugin_name,
        options=validated,
        warnings=tuple(notes),
        retention=retention,
        sealing=sealing,
    )


def _file_permission_warnings(path: Path, config: Config) -> list[str]:
    if os.name != "posix":
        return []
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return []
    literal = [where for where, secret in iter_secrets(config) if secret.written_in_file]
    if not literal:
        return []
    return [
        (
            f"{path} is readable by other users and holds literal secrets at "
            f"{', '.join(literal)}: use env:NAME or file:PATH references, or chmod 600 {path}"
        )
    ]


def iter_secrets(config: Config) -> list[tuple[str, Secret]]:
    """Every secret in the configuration, with its config path."""
    found: list[tuple[str, Secret]] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, Secret):
            found.append((where, value))
        elif isinstance(value, BaseModel):
            for key in type(value).model_fields:
                walk(getattr(value, key), f"{where}.{key}" if where else key)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")

    walk(config.state, "state")
    walk(config.sites, "sites")
    for name, destination in config.destinations.items():
        walk(destination.options, f"destinations.{name}")
    walk(config.notifications, "notifications")
    walk(config.executor, "executor")
    walk(config.integrity, "integrity")
    return found
