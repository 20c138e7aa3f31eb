"""``btic check`` online: can each site (and destination) do what the schedules ask?

Each check yields :class:`CheckResult` lines: one per thing checked, each
failure saying what to fix. Nothing is written anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from btic.appliance.client import ApplianceClient, permission_advice
from btic.appliance.model import Product
from btic.appliance.reports import REPORT_NAMES, REQUIRED_PERMISSION, session_report_kind
from btic.config import Config
from btic.errors import (
    ApplianceError,
    BticError,
    ConfigError,
    ConfigProblem,
    DestinationError,
    PermissionDenied,
)
from btic.plugins import PluginManager
from btic.types import PRODUCT_DATA_TYPES, DataType

CLOCK_WARNING_SECONDS = 120


@dataclass(frozen=True)
class CheckResult:
    subject: str  # "site support", "destination archive"
    ok: bool
    message: str
    warning: bool = False

    def line(self) -> str:
        status = "ok  " if self.ok and not self.warning else ("warn" if self.ok else "FAIL")
        return f"{status} {self.subject}: {self.message}"


def needed_data_types(config: Config, site: str) -> dict[DataType, list[str]]:
    """Data types the schedules pull from ``site``, with the config paths asking."""
    needed: dict[DataType, list[str]] = {}
    for schedule_name, schedule in config.schedules.items():
        for index, transfer in enumerate(schedule.transfers):
            if transfer.site == site:
                for data_type in transfer.data:
                    needed.setdefault(data_type, []).append(
                        f"schedules.{schedule_name}.transfers[{index}]"
                    )
    return needed


def check_site(
    config: Config, name: str, client: ApplianceClient | None = None
) -> Iterator[CheckResult]:
    """Reachability, TLS, credentials, product, the permissions the schedules
    need, and the clock of one site."""
    owned = client is None
    client = client or ApplianceClient.for_site(name, config, retries=1, backoff=0.2)
    try:
        yield from _check_site(config, name, client)
    finally:
        if owned:
            client.close()


def _check_site(config: Config, name: str, client: ApplianceClient) -> Iterator[CheckResult]:
    subject = f"site {name}"
    site = config.sites[name]
    try:
        command_api = client.command_api()
        now = client.appliance_now()
        product = client.product
    except ApplianceError as exc:
        yield CheckResult(subject, False, str(exc).removeprefix(f"site {name}: "))
        return
    tls = (
        "TLS verified"
        if site.scheme == "https" and site.verify_tls
        else ("TLS NOT verified" if site.scheme == "https" else "no TLS")
    )
    version = f"API {client.api_info().api_version}, " if command_api else ""
    detected = f" (detected from {client.product_source})" if site.product == "auto" else ""
    yield CheckResult(
        subject,
        True,
        f"{client.base_url} reachable, {tls}, credentials accepted, {version}"
        f"product {product.upper()}{detected}",
    )
    if not command_api:
        yield CheckResult(
            subject,
            True,
            "note: the API account may not use the Command API (not needed: the clock comes "
            "from the HTTP Date header); allow 'Command API: Read-Only' if you want btic check "
            "to show the API version and the backup permission",
        )
    for data_type, paths in sorted(needed_data_types(config, name).items()):
        yield from _check_permission(client, subject, product, data_type, ", ".join(paths))
    skew = (now - datetime.now(timezone.utc)).total_seconds()
    direction = "ahead of" if skew > 0 else "behind"
    message = (
        f"appliance clock ({client.clock_source}) is {abs(skew):.0f}s {direction} this machine"
    )
    if abs(skew) >= CLOCK_WARNING_SECONDS:
        yield CheckResult(
            subject,
            True,
            message + "; btic uses the appliance's clock, so nothing is "
            "lost, but synchronise both with NTP",
            warning=True,
        )
    else:
        yield CheckResult(subject, True, message)


def _check_permission(
    client: ApplianceClient, subject: str, product: Product, data_type: DataType, where: str
) -> Iterator[CheckResult]:
    if data_type not in PRODUCT_DATA_TYPES[product]:
        yield CheckResult(
            subject,
            False,
            f"{where} asks for {data_type.value}, which a "
            f"{product.upper()} appliance does not have; remove it from data",
        )
        return
    permission = REQUIRED_PERMISSION[product][data_type]
    if client.command_api():
        allowed = client.api_info().allows(permission)
    elif data_type == DataType.BACKUP:
        # Only get_api_info tells without taking a backup.
        yield CheckResult(
            subject,
            True,
            f"note: {permission} (for {data_type.value}) is not checked without the Command API",
        )
        return
    else:
        report = REPORT_NAMES[(product, session_report_kind(product, data_type))].listing
        try:
            client.probe_report(report)
            allowed = True
        except PermissionDenied:
            allowed = False
        except ApplianceError as exc:
            yield CheckResult(subject, False, str(exc).removeprefix(f"{subject}: "))
            return
    if not allowed:
        yield CheckResult(
            subject,
            False,
            f"missing permission {permission} needed by {where} for {data_type.value}: "
            f"allow '{permission_advice(permission)}' for the API account in /login > "
            "Management > API Configuration",
        )


def offline_problems(config: Config, plugins: PluginManager) -> list[ConfigProblem]:
    """What ``btic check --offline`` finds beyond the file's own validation, contacting
    nothing: each secret that cannot be read here, then what each destination's
    ``on_configure`` says of its options together; each with its path."""
    problems = config.secret_problems()
    unreadable = {problem.path for problem in problems}
    for name in config.destinations:
        if any(path.startswith(f"destinations.{name}.") for path in unreadable):
            continue  # its own checks would only stop at the same secret
        try:
            config.configure_destination(plugins, name)
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems


def check_destinations(
    config: Config, plugins: PluginManager, names: Iterable[str] | None = None
) -> Iterator[CheckResult]:
    """``on_check`` of the named destinations (all by default)."""
    for name in config.destinations if names is None else names:
        destination = config.destinations[name]
        subject = f"destination {name}"
        try:
            config.configure_destination(plugins, name)
            line = plugins.on_check(name)
        except (DestinationError, ConfigError) as exc:
            yield CheckResult(subject, False, str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - a plugin bug is a failed check, not a crash
            yield CheckResult(subject, False, f"{type(exc).__name__}: {exc}")
            continue
        if line is None:
            yield CheckResult(
                subject,
                True,
                f"not tested: plugin {destination.plugin} has no on_check; its options are valid",
                warning=True,
            )
        else:
            yield CheckResult(subject, True, line)


def check_executor(config: Config) -> Iterator[CheckResult]:
    """With the celery executor: the broker answers and the shared state database
    answers (run on each worker machine: a worker needs both, and the destinations)."""
    if config.executor.kind == "local":
        return
    from btic.executor.app import celery_app
    from btic.state import StateStore, failures_reported, safe_url

    subject = f"executor {config.executor.kind}"
    broker = config.executor.broker_url.display if config.executor.broker_url else "(none)"
    try:
        app = celery_app(config.executor)
        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=10)
        finally:
            app.close()
    except Exception as exc:  # noqa: BLE001 - kombu's errors differ by transport
        yield CheckResult(
            subject,
            False,
            f"broker {broker} does not answer: {exc}; check executor.broker_url and that "
            "the broker runs and this machine may reach it",
        )
    else:
        yield CheckResult(subject, True, f"broker {broker} answers")
    try:
        with failures_reported(config.state_url):
            store = StateStore(config.state_url)
            try:
                store.task_counts()
            finally:
                store.close()
    except BticError as exc:
        yield CheckResult(subject, False, f"state database: {exc}")
    else:
        yield CheckResult(
            subject, True, f"state database {safe_url(config.state_url)} answers (shared)"
        )
