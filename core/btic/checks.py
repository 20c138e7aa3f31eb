"""``btic check`` online: can each site (and destination) do what the schedules ask?

Each check yields :class:`CheckResult` lines: one per thing checked, each
failure saying what to fix. Nothing is written anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import btic
from btic.appliance.client import ApplianceClient, permission_advice
from btic.appliance.reports import REQUIRED_PERMISSION
from btic.config import Config
from btic.errors import ApplianceError, ConfigError, DestinationError
from btic.plugins import PluginManager
from btic.types import PRODUCT_DATA_TYPES, AppContext, DataType

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
    subject = f"site {name}"
    site = config.sites[name]
    owned = client is None
    client = client or ApplianceClient.for_site(name, config, retries=1, backoff=0.2)
    try:
        try:
            info = client.api_info()
        except ApplianceError as exc:
            yield CheckResult(subject, False, str(exc).removeprefix(f"site {name}: "))
            return
        tls = (
            "TLS verified"
            if site.scheme == "https" and site.verify_tls
            else ("TLS NOT verified" if site.scheme == "https" else "no TLS")
        )
        product = client.product
        yield CheckResult(
            subject,
            True,
            f"{client.base_url} reachable, {tls}, credentials accepted, API {info.api_version}, "
            f"product {product.upper()}" + (" (detected)" if site.product == "auto" else ""),
        )
        for data_type, paths in sorted(needed_data_types(config, name).items()):
            where = ", ".join(paths)
            if data_type not in PRODUCT_DATA_TYPES[product]:
                yield CheckResult(
                    subject,
                    False,
                    f"{where} asks for {data_type.value}, which a "
                    f"{product.upper()} appliance does not have; remove it from data",
                )
                continue
            permission = REQUIRED_PERMISSION[product][data_type]
            if not info.allows(permission):
                yield CheckResult(
                    subject,
                    False,
                    f"missing permission {permission} needed by {where} for {data_type.value}: "
                    "allow "
                    f"'{permission_advice(permission)}' for the API account in /login > "
                    "Management > "
                    "API Configuration",
                )
        skew = (info.timestamp - datetime.now(timezone.utc)).total_seconds()
        direction = "ahead of" if skew > 0 else "behind"
        message = f"appliance clock is {abs(skew):.0f}s {direction} this machine"
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
    finally:
        if owned:
            client.close()


def check_destinations(config: Config, plugins: PluginManager) -> Iterator[CheckResult]:
    """``on_check`` of every configured destination."""
    app = AppContext(config_dir=config.base_dir, version=btic.__version__)
    for name, destination in config.destinations.items():
        subject = f"destination {name}"
        try:
            plugins.add_destination(name, destination.plugin, destination.options, app)
            line = plugins.on_check(name)
        except (DestinationError, ConfigError) as exc:
            yield CheckResult(subject, False, str(exc))
        except Exception as exc:  # noqa: BLE001 - a plugin bug is a failed check, not a crash
            yield CheckResult(subject, False, f"{type(exc).__name__}: {exc}")
        else:
            yield CheckResult(subject, True, line or "configured (the plugin has no on_check)")
