"""The sections of the configuration file as pydantic models, and the period
and time-of-day values they use."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    field_validator,
)

from btic.schedule import Period, zone_named
from btic.secrets import DatabaseUrl, Secret
from btic.types import DataType

MIN_PERIOD = timedelta(minutes=1)
MAX_PERIOD = timedelta(days=7)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdwy])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: A year, for periods of retention: 365 days (what ``7y`` means, leap days aside).
_YEAR = timedelta(days=365)


def parse_duration(value: Any) -> timedelta:
    """``"15m"``, ``"2h"``, ``"1d"``, ``"30s"``, ``"1w"``, ``"7y"`` -> timedelta."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError("must be a period such as 30s, 15m, 2h, 1d, 1w or 7y")
    number, unit = match.groups()
    if unit == "y":
        return int(number) * _YEAR
    return timedelta(**{_DURATION_UNITS[unit]: int(number)})


def format_duration(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    for suffix, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def parse_time_of_day(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value)
        if match and int(match[1]) < 24 and int(match[2]) < 60:
            return time(int(match[1]), int(match[2]))
    raise ValueError('must be a time of day as "HH:MM", from "00:00" to "23:59"')


def within(value: timedelta, low: timedelta, high: timedelta, allowed: str) -> timedelta:
    """``value`` if ``low <= value <= high``; ``allowed`` says the range in words."""
    if not low <= value <= high:
        raise ValueError(f"{format_duration(value)} is outside the allowed {allowed}")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
TimeOfDay = Annotated[time, BeforeValidator(parse_time_of_day)]


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
    max_session_megabytes: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="the largest session report btic parses at once (memory follows it)",
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
    command_shell_format: Literal["flv", "txt"] = Field(
        default="flv",
        description='"txt": command shells as their text output (PA appliances, format=txt)',
    )


class ScheduleConfig(_Section):
    """``[schedules.NAME]``: a period and the transfers that run together."""

    every: Duration
    at: TimeOfDay | None = None
    time_zone: str | None = Field(
        default=None, description="IANA zone of `at` (Europe/Berlin); default: this machine's"
    )
    enabled: bool = True
    transfers: list[TransferConfig] = Field(min_length=1)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"{value!r} is not a time zone name (an IANA name: Europe/Berlin, UTC)"
                ) from None
        return value

    def period(self) -> Period:
        """When the schedule is due (see :mod:`btic.schedule`)."""
        return Period(self.every, self.at, zone_named(self.time_zone))

    @field_validator("every")
    @classmethod
    def _period_in_range(cls, value: timedelta) -> timedelta:
        return within(value, MIN_PERIOD, MAX_PERIOD, "1m .. 7d")


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
    ca_bundle: Path | None = Field(
        default=None, description="CA file that signed the SMTP server's certificate"
    )
    timeout: float = Field(default=30.0, gt=0, le=600)
    max_errors_listed: int = Field(default=50, ge=1, le=10000)

    @field_validator("from_address", "to")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
                raise ValueError(f"{address!r} is not an e-mail address (name@example.com)")
        return value


class NotificationsConfig(_Section):
    """``[notifications]``."""

    email: EmailConfig | None = None


class ExecutorConfig(_Section):
    """``[executor]``: where schedules' transfers run.

    ``local`` (the default): in the ``btic run`` process. ``celery``: ``btic run``
    enqueues one task per due (site, transfer) on a Celery broker and
    ``btic worker`` processes, on any number of machines, run them.
    """

    kind: Literal["local", "celery"] = "local"
    broker_url: DatabaseUrl | None = Field(
        default=None, description="Celery broker, e.g. redis://:PASSWORD@host:6379/0"
    )
    result_backend: DatabaseUrl | None = Field(
        default=None, description="Celery result backend; btic needs none"
    )
    queue: str = Field(default="btic", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    #: A task not acknowledged within this time is given to another worker, so it
    #: must be longer than the longest transfer (a first sync of years of recordings).
    visibility_timeout: Duration = Field(default=timedelta(hours=12))
    tasks_per_site: int = Field(default=4, ge=1, le=25)
    busy_retry: Duration = Field(default=timedelta(seconds=30))

    @field_validator("visibility_timeout")
    @classmethod
    def _visibility(cls, value: timedelta) -> timedelta:
        return within(value, timedelta(seconds=10), timedelta(days=7), "10s .. 7d")

    @field_validator("busy_retry")
    @classmethod
    def _busy_retry(cls, value: timedelta) -> timedelta:
        return within(value, timedelta(seconds=1), timedelta(hours=1), "1s .. 1h")


class RetentionConfig(_Section):
    """``[retention]``: what every destination's ``retention`` rules must respect."""

    floor: Duration = Field(
        default=timedelta(days=1),
        description="the shortest retention period a rule may have (a typo's guard)",
    )


class IntegrityConfig(_Section):
    """``[integrity]``: signed digests written into each destination after each run."""

    signing_key: Secret | None = Field(
        default=None,
        description='the Ed25519 private key, PEM, by reference: "file:/etc/btic/btic-signing.key"',
    )
    public_key: Path | None = Field(
        default=None,
        description="the public key btic verify checks digests with; default: the signing key's",
    )


class ServeConfig(_Section):
    """``[serve]``: ``btic serve``, the read-only viewer over the archive."""

    host: str = Field(default="127.0.0.1", description="the address to listen on")
    port: int = Field(default=8080, ge=1, le=65535)
    users: dict[str, str] = Field(
        default_factory=dict,
        description="user name -> argon2id hash of the password (btic serve hash-password)",
    )
    session_secret: Secret | None = Field(
        default=None,
        description="signs the login cookie; default: a new one each start (logins end with it)",
    )
    lockout_failures: int = Field(default=5, ge=1, description="failed logins before a lockout")
    lockout_minutes: int = Field(default=15, ge=1, description="how long a lockout lasts")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="addresses of reverse proxies that authenticate (OIDC at the proxy); "
        "their user_header names the user, from any other address it is ignored",
    )
    user_header: str = Field(
        default="X-Forwarded-User",
        pattern=r"^[A-Za-z0-9-]+$",
        description="the header a trusted proxy names its authenticated user in",
    )

    @field_validator("users")
    @classmethod
    def _hashes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, hashed in value.items():
            if not hashed.startswith("$argon2id$"):
                raise ValueError(
                    f"{name}: not an argon2id hash; make one with btic serve hash-password"
                )
        return value


class ConfigFile(_Section):
    state: StateConfig = StateConfig()
    sites: dict[str, SiteConfig] = {}
    # Validated separately against each plugin's Options model.
    destinations: dict[str, dict[str, Any]] = {}
    schedules: dict[str, ScheduleConfig] = {}
    logging: LoggingConfig = LoggingConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    executor: ExecutorConfig = ExecutorConfig()
    retention: RetentionConfig = RetentionConfig()
    integrity: IntegrityConfig = IntegrityConfig()
    serve: ServeConfig = ServeConfig()
