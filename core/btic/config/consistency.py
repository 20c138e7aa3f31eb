"""What must hold across the sections of a configuration, once each is valid on
its own: names, the references of schedules to sites, destinations and plugin
capabilities, sites' files and extras, and what a distributed executor needs."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from btic import encryption
from btic.config.sections import NAME_PATTERN, format_duration
from btic.errors import ConfigProblem
from btic.plugins import PluginManager
from btic.types import PRODUCT_DATA_TYPES, DataType

if TYPE_CHECKING:
    from btic.config.loading import Config


def capability_problems(
    plugins: PluginManager, destination: str, plugin_name: str, data_types: Iterable[DataType]
) -> list[str]:
    """One message per data type the destination's plugin has no hook for."""
    receives = plugins.get(plugin_name).data_types
    return [
        f"destination {destination!r} (plugin {plugin_name}) cannot receive "
        f"{data_type.value!r}; it receives: {_listed(receives)}"
        for data_type in data_types
        if data_type not in receives
    ]


def check_names(declared: dict[str, set[str]]) -> list[ConfigProblem]:
    problems = []
    for section, names in declared.items():
        for name in sorted(names):
            if not NAME_PATTERN.match(name):
                problems.append(
                    ConfigProblem(
                        f"{section}.{name}",
                        "name must start with a letter or digit and use only letters, "
                        "digits, '-', '_' and '.' (at most 64 characters)",
                    )
                )
    return problems


def check_references(
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
                        f"no site named {transfer.site!r}; defined: {_listed(declared['sites'])}",
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
                                f"{_listed(PRODUCT_DATA_TYPES[site.product])}",
                            )
                        )
            if site is not None and site.product == "rs" and transfer.command_shell_format == "txt":
                problems.append(
                    ConfigProblem(
                        f"{twhere}.command_shell_format",
                        f'site {transfer.site!r} is an RS appliance; "txt" (format=txt) is a '
                        'Privileged Access feature: use "flv"',
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
                                f"{_listed(declared['destinations'])}",
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


def check_sites(config: Config) -> list[ConfigProblem]:
    problems = []
    for name, site in config.sites.items():
        if site.ca_bundle is not None:
            bundle = (
                site.ca_bundle if site.ca_bundle.is_absolute() else config.base_dir / site.ca_bundle
            )
            if not bundle.is_file():
                problems.append(ConfigProblem(f"sites.{name}.ca_bundle", f"{bundle} is not a file"))
            else:
                try:
                    ssl.create_default_context(cafile=str(bundle))
                except (ssl.SSLError, OSError, ValueError) as exc:
                    problems.append(
                        ConfigProblem(
                            f"sites.{name}.ca_bundle",
                            f"{bundle} holds no CA certificate btic can read (PEM expected: "
                            f"-----BEGIN CERTIFICATE-----): {exc.__class__.__name__}",
                        )
                    )
        if site.backup_password is not None and not encryption.available():
            problems.append(
                ConfigProblem(
                    f"sites.{name}.backup_password",
                    f"backups are encrypted with age, which needs pyrage: {encryption.EXTRA_HINT}",
                )
            )
    return problems


def site_warnings(config: Config) -> list[str]:
    found = []
    for name, site in config.sites.items():
        if not site.verify_tls:
            found.append(
                f"sites.{name}.verify_tls is false: the appliance's identity is not checked; "
                "trust its certificate with ca_bundle instead"
            )
        if site.scheme == "http":
            found.append(
                f"sites.{name}.scheme is http: credentials and data travel unencrypted "
                "(meant only for the simulated appliance)"
            )
    return found


def distributed_problems(config: Config) -> list[ConfigProblem]:
    """What keeps this configuration from running its transfers on Celery workers."""
    problems = []
    if config.executor.broker_url is None:
        problems.append(
            ConfigProblem(
                "executor.broker_url",
                "is required for a distributed executor (e.g. redis://:PASSWORD@host:6379/0, "
                'or "env:BTIC_BROKER_URL")',
            )
        )
    if config.state_url.startswith("sqlite"):
        problems.append(
            ConfigProblem(
                "state.url",
                "must be a server database (postgresql://...) for a distributed executor: "
                "workers on other machines cannot share a SQLite file",
            )
        )
    return problems


def _listed(items: Any) -> str:
    names = sorted(str(getattr(i, "value", i)) for i in items)
    return ", ".join(names) if names else "none"
