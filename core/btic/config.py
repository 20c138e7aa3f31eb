"""The configuration file: TOML -> validated models, with every problem at once.

:func:`load_config` reads one TOML file, validates each section, validates each
destination's options against its plugin's ``Options`` model, resolves secret
references and cross-checks the sections against each other. It reports every
problem it finds together, each with its config path and what is allowed, as
one :class:`btic.ConfigError`, so a user fixes a file in one pass.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from btic.errors import ConfigError, ConfigProblem, UsageError
from btic.naming import ConfigWarning
from btic.plugins import PluginManager
from btic.secrets import DatabaseUrl, Secret
from btic.types import PRODUCT_DATA_TYPES, DataType

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_ENV = "BTIC_CONFIG"
DEFAULT_CONFIG_NAME = "btic.toml"
DEFAULT_STATE_NAME = "btic-state.db"

MIN_PERIOD = timedelta(minutes=1)
MAX_PERIOD = timedelta(days=7)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: Any) -> timedelta:
    """``"15m"``, ``"2h"``, ``"1d"``, ``"30s"``, ``"1w"`` -> timedelta."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError("must be a period such as 30s, 15m, 2h, 1d or 1w")
    number, unit = match.groups()
    return timedelta(**{_DURATION_UNITS[unit]: int(number)})


def format_duration(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    for suffix, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def _parse_time_of_day(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value)
        if match and int(match[1]) < 24 and int(match[2]) < 60:
            return time(int(match[1]), int(match[2]))
    raise ValueError('must be a time of day as "HH:MM", from "00:00" to "23:59"')


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
TimeOfDay = Annotated[time, BeforeValidator(_parse_time_of_day)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateConfig(_Section):
    """``[state]``: where the ledger, watermarks and runs are kept."""

    url: DatabaseUrl | None = Field(
        default=None, description="SQLAlchemy URL; default: btic-state.db beside the config file"
    )


class SiteConfig(_Section):
    """``[sites.NAME]``: one appliance."""

    host: str
    client_id: str
    client_secret: Secret
    product: Literal["rs", "pa", "auto"] = "auto"
    scheme: Literal["https", "http"] = "https"
    verify_tls: bool = True
    ca_bundle: Path | None = None
    keep_alive: bool = False
    backup_password: Secret | None = None
    timeout: float = Field(default=60.0, gt=0, le=3600)
    download_concurrency: int = Field(
        default=4, ge=1, le=32, description="recordings downloaded at once"
    )
    no_data_messages: list[str] = Field(
        default_factory=list,
        description="extra phrases (regular expressions) the appliance uses for 'no matching data'",
    )
    first_run_since: str = "1d"
    overlap: Duration = timedelta(minutes=10)
    settle_delay: Duration = timedelta(minutes=2)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        value = value.strip()
        if "://" in value:
            raise ValueError(
                'give the host name only, without "https://" (as in support.example.com)'
            )
        if not re.fullmatch(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:]+\](:\d{1,5})?", value):
            raise ValueError("must be a host name or address, optionally with :port, and no path")
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; copy the OAuth client ID of the API account")
        return value.strip()

    @field_validator("no_data_messages")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
        return value

    @field_validator("first_run_since")
    @classmethod
    def _first_run_since(cls, value: str) -> str:
        if value != "all":
            parse_duration(value)
        return value

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"


class TransferConfig(_Section):
    """One ``[[schedules.NAME.transfers]]``: a site, destinations, data types."""

    site: str
    destinations: list[str] = Field(min_length=1)
    data: list[DataType] = Field(min_length=1)


class ScheduleConfig(_Section):
    """``[schedules.NAME]``: a period and the transfers that run together."""

    every: Duration
    at: TimeOfDay | None = None
    enabled: bool = True
    transfers: list[TransferConfig] = Field(min_length=1)

    @field_validator("every")
    @classmethod
    def _period_in_range(cls, value: timedelta) -> timedelta:
        if not MIN_PERIOD <= value <= MAX_PERIOD:
            raise ValueError(f"{format_duration(value)} is outside the allowed 1m .. 7d")
        return value


class LoggingConfig(_Section):
    """``[logging]``."""

    directory: Path | None = None
    level: Literal["debug", "info", "warning", "error"] = "info"
    log_retention_days: int = Field(default=30, ge=1, le=3650)


class EmailConfig(_Section):
    """``[notifications.email]``: SMTP settings for error notifications."""

    smtp_host: str
    smtp_port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: Secret | None = None
    from_address: str
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[btic]"


class NotificationsConfig(_Section):
    """``[notifications]``."""

    email: EmailConfig | None = None


class _ConfigFile(_Section):
    state: StateConfig = StateConfig()
    sites: dict[str, SiteConfig] = {}
    # Validated separately against each plugin's Options model.
    destinations: dict[str, dict[str, Any]] = {}
    schedules: dict[str, ScheduleConfig] = {}
    logging: LoggingConfig = LoggingConfig()
    notifications: NotificationsConfig = NotificationsConfig()


@dataclass(frozen=True)
class DestinationConfig:
    """``[destinations.NAME]``: a plugin and its validated options."""

    name: str
    plugin: str
    options: BaseModel
    warnings: tuple[str, ...] = ()


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
    warnings: list[str] = field(default_factory=list)

    @property
    def state_url(self) -> str:
        if self.state.url is not None:
            return self.state.url.get_secret_value()
        return f"sqlite:///{self.base_dir / DEFAULT_STATE_NAME}"

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


def capability_problems(
    plugins: PluginManager, destination: str, plugin_name: str, data_types: Iterable[DataType]
) -> list[str]:
    """One message per data type the destination's plugin has no hook for."""
    receives = plugins.get(plugin_name).data_types
    return [
        f"destination {destination!r} (plugin {plugin_name}) cannot receive "
        f"{data_type.value!r}; it receives: {_names(receives)}"
        for data_type in data_types
        if data_type not in receives
    ]


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
        parsed = _ConfigFile.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(_problems_from(exc, _ConfigFile))
        parsed = _salvage(data, context)

    destinations: dict[str, DestinationConfig] = {}
    for name, section in parsed.destinations.items():
        destination = _validate_destination(name, section, plugins, context, problems)
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
    )
    declared = {
        section: set(data[section]) if isinstance(data.get(section), Mapping) else set()
        for section in ("sites", "destinations", "schedules")
    }
    problems.extend(_check_names(declared))
    problems.extend(_check_references(config, declared, plugins))
    problems.extend(_check_sites(config))
    if problems:
        raise ConfigError(problems)
    config.warnings.extend(_site_warnings(config))
    for destination in destinations.values():
        config.warnings.extend(destination.warnings)
    return config


def _salvage(data: Mapping[str, Any], context: dict[str, Any]) -> _ConfigFile:
    """Validate each section on its own, keeping those that are valid.

    Cross-checks then still run on what is usable, so a file with a bad site
    and a bad schedule reports both problems, not just the first.
    """
    kept: dict[str, Any] = {}
    for key, model_field in _ConfigFile.model_fields.items():
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, dict) and get_origin(model_field.annotation) is dict:
            value_type = get_args(model_field.annotation)[1]
            kept[key] = {}
            for name, item in value.items():
                if not _is_model(value_type):
                    kept[key][name] = item
                    continue
                try:
                    kept[key][name] = value_type.model_validate(item, context=context)
                except ValidationError:
                    if value_type is ScheduleConfig and isinstance(item, Mapping):
                        kept[key][name] = _salvage_schedule(item)
        elif _is_model(model_field.annotation):
            with contextlib.suppress(ValidationError):
                kept[key] = model_field.annotation.model_validate(value, context=context)
    return _ConfigFile.model_construct(**kept)


def _salvage_schedule(raw: Mapping[str, Any]) -> ScheduleConfig:
    """What can be read of an invalid schedule, for the cross-checks.

    Unreadable values become None (or are left out of lists) and the checks
    skip them; list positions are kept so paths stay right.
    """

    def attempt(parse: Any, value: Any) -> Any:
        try:
            return parse(value)
        except (ValueError, TypeError):
            return None

    transfers: list[Any] = []
    raw_transfers = raw.get("transfers")
    for item in raw_transfers if isinstance(raw_transfers, list) else []:
        if not isinstance(item, Mapping):
            transfers.append(None)
            continue
        site = item.get("site")
        destinations = item.get("destinations")
        data = item.get("data")
        transfers.append(
            TransferConfig.model_construct(
                site=site if isinstance(site, str) else None,
                destinations=[d if isinstance(d, str) else None for d in destinations]
                if isinstance(destinations, list)
                else [],
                data=[dt for dt in (attempt(DataType, d) for d in data) if dt is not None]
                if isinstance(data, list)
                else [],
            )
        )
    return ScheduleConfig.model_construct(
        every=attempt(parse_duration, raw.get("every")),
        at=attempt(_parse_time_of_day, raw.get("at")) if raw.get("at") is not None else None,
        enabled=True,
        transfers=transfers,
    )


def _validate_destination(
    name: str,
    section: Mapping[str, Any],
    plugins: PluginManager,
    context: dict[str, Any],
    problems: list[ConfigProblem],
) -> DestinationConfig | None:
    where = f"destinations.{name}"
    if not isinstance(section, Mapping):
        problems.append(ConfigProblem(where, "must be a table of settings"))
        return None
    options = dict(section)
    plugin_name = options.pop("plugin", None)
    if not isinstance(plugin_name, str) or not plugin_name:
        installed = ", ".join(plugins.loaded_names()) or "none installed"
        problems.append(ConfigProblem(f"{where}.plugin", f"is required; one of: {installed}"))
        return None
    try:
        info = plugins.get(plugin_name)
    except ConfigError as exc:
        problems.append(ConfigProblem(f"{where}.plugin", str(exc)))
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        try:
            validated = info.options_model.model_validate(options, context=context)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, info.options_model, prefix=where))
            return None
    notes = list(
        dict.fromkeys(
            f"{where}: {w.message}" for w in caught if issubclass(w.category, ConfigWarning)
        )
    )
    return DestinationConfig(
        name=name, plugin=plugin_name, options=validated, warnings=tuple(notes)
    )


def _check_names(declared: dict[str, set[str]]) -> list[ConfigProblem]:
    problems = []
    for section, names in declared.items():
        for name in sorted(names):
            if not _NAME_RE.match(name):
                problems.append(
                    ConfigProblem(
                        f"{section}.{name}",
                        "name must start with a letter or digit and use only letters, "
                        "digits, '-', '_' and '.' (at most 64 characters)",
                    )
                )
    return problems


def _check_references(
    config: Config, declared: dict[str, set[str]], plugins: PluginManager
) -> list[ConfigProblem]:
    """Schedules against sites, destinations and plugin capabilities.

    A name that is declared but invalid was reported already; only names
    declared nowhere are reported here.
    """
    problems = []
    for schedule_name, schedule in config.schedules.items():
        where = f"schedules.{schedule_name}"
        if (
            schedule.at is not None
            and schedule.every is not None
            and schedule.every % timedelta(days=1)
        ):
            problems.append(
                ConfigProblem(
                    f"{where}.at",
                    f"only periods of whole days may set a time of day; every = "
                    f'{format_duration(schedule.every)!r} (use every = "1d", or remove at)',
                )
            )
        for index, transfer in enumerate(schedule.transfers):
            if transfer is None:
                continue
            twhere = f"{where}.transfers[{index}]"
            site = config.sites.get(transfer.site) if transfer.site is not None else None
            if (
                transfer.site is not None
                and site is None
                and transfer.site not in declared["sites"]
            ):
                problems.append(
                    ConfigProblem(
                        f"{twhere}.site",
                        f"no site named {transfer.site!r}; defined: {_names(declared['sites'])}",
                    )
                )
            if site is not None and site.product != "auto":
                for data_type in transfer.data:
                    if data_type not in PRODUCT_DATA_TYPES[site.product]:
                        problems.append(
                            ConfigProblem(
                                f"{twhere}.data",
                                f"site {transfer.site!r} is a {site.product.upper()} appliance, "
                                f"which has no {data_type.value!r}; it has: "
                                f"{_names(PRODUCT_DATA_TYPES[site.product])}",
                            )
                        )
            for dindex, destination_name in enumerate(transfer.destinations):
                if destination_name is None:
                    continue
                destination = config.destinations.get(destination_name)
                if destination is None:
                    if destination_name not in declared["destinations"]:
                        problems.append(
                            ConfigProblem(
                                f"{twhere}.destinations[{dindex}]",
                                f"no destination named {destination_name!r}; defined: "
                                f"{_names(declared['destinations'])}",
                            )
                        )
                    continue
                problems.extend(
                    ConfigProblem(f"{twhere}.data", message)
                    for message in capability_problems(
                        plugins, destination_name, destination.plugin, transfer.data
                    )
                )
    return problems


def _check_sites(config: Config) -> list[ConfigProblem]:
    problems = []
    for name, site in config.sites.items():
        if site.ca_bundle is not None:
            bundle = (
                site.ca_bundle if site.ca_bundle.is_absolute() else config.base_dir / site.ca_bundle
            )
            if not bundle.is_file():
                problems.append(ConfigProblem(f"sites.{name}.ca_bundle", f"{bundle} is not a file"))
    return problems


def _site_warnings(config: Config) -> list[str]:
    warnings = []
    for name, site in config.sites.items():
        if not site.verify_tls:
            warnings.append(
                f"sites.{name}.verify_tls is false: the appliance's identity is not checked; "
                "trust its certificate with ca_bundle instead"
            )
        if site.scheme == "http":
            warnings.append(
                f"sites.{name}.scheme is http: credentials and data travel unencrypted "
                "(meant only for the simulated appliance)"
            )
    return warnings


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
    return found


def _names(items: Any) -> str:
    names = sorted(str(getattr(i, "value", i)) for i in items)
    return ", ".join(names) if names else "none"


# -- turning pydantic's errors into config paths and plain messages ----------


def _problems_from(
    exc: ValidationError, model: type[BaseModel], prefix: str = ""
) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = error["loc"]
        problems.append(ConfigProblem(_join_path(prefix, loc), _message(error, model, loc)))
    return problems


def _join_path(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def _message(error: Mapping[str, Any], model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"unknown setting; allowed: {', '.join(allowed)}" if allowed else "unknown setting"
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("too_short",) and ctx.get("min_length") == 1:
        return "must list at least one"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a table"
    return str(error["msg"])


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at ``loc`` (for "unknown setting" messages)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not _is_model(current):
            current = _unwrap(current, part)
            continue
        model_field = current.model_fields.get(part)
        if model_field is None:
            return []
        current = model_field.annotation
        current = _strip_optional(current)
    current = _strip_optional(current)
    if _is_model(current):
        return sorted(current.model_fields)
    return []


def _unwrap(annotation: Any, part: Any) -> Any:
    annotation = _strip_optional(annotation)
    origin = get_origin(annotation)
    if origin is dict:
        return _strip_optional(get_args(annotation)[1])
    if origin in (list, tuple):
        return _strip_optional(get_args(annotation)[0])
    return annotation


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) is Union or type(annotation).__name__ == "UnionType":
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
