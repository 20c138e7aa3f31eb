"""The configuration: one TOML file validated into typed models.

* :mod:`btic.config.sections` — each section as a pydantic model;
* :mod:`btic.config.loading` — reading the file, :class:`Config`;
* :mod:`btic.config.consistency` — what must hold across sections;
* :mod:`btic.config.problems` — pydantic's errors as config paths and plain
  messages, and salvaging what is valid so every problem is found in one pass.
"""

from btic.config.consistency import capability_problems, distributed_problems
from btic.config.loading import (
    CONFIG_ENV,
    DEFAULT_CONFIG_NAME,
    DEFAULT_STATE_NAME,
    Config,
    DestinationConfig,
    build_config,
    default_config_path,
    iter_secrets,
    load_config,
)
from btic.config.sections import (
    MAX_PERIOD,
    MIN_PERIOD,
    EmailConfig,
    ExecutorConfig,
    LoggingConfig,
    NotificationsConfig,
    ScheduleConfig,
    SiteConfig,
    StateConfig,
    TransferConfig,
    format_duration,
    parse_duration,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_STATE_NAME",
    "MAX_PERIOD",
    "MIN_PERIOD",
    "Config",
    "DestinationConfig",
    "EmailConfig",
    "ExecutorConfig",
    "LoggingConfig",
    "NotificationsConfig",
    "ScheduleConfig",
    "SiteConfig",
    "StateConfig",
    "TransferConfig",
    "build_config",
    "capability_problems",
    "default_config_path",
    "distributed_problems",
    "format_duration",
    "iter_secrets",
    "load_config",
    "parse_duration",
]
