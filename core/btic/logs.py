"""Logging set-up: structlog, human-readable on a terminal, key=value otherwise.

Known secret values are scrubbed from every event before it is rendered,
tracebacks included.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

if TYPE_CHECKING:
    from btic.config import Config

MASK = "********"


def scrubber(secrets: Iterable[str]) -> Processor:
    values = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
        if not values:
            return event
        for key, value in list(event.items()):
            if isinstance(value, str):
                for secret in values:
                    if secret in value:
                        value = value.replace(secret, MASK)
                event[key] = value
        return event

    return scrub


def for_config(config: Config, stream: Any = None) -> FilteringBoundLogger:
    """Logging as ``[logging]`` asks, with every secret of ``config`` scrubbed."""
    from btic.config import iter_secrets

    secrets = [secret.get_secret_value() for _, secret in iter_secrets(config)]
    return configure(config.logging.level, secrets, stream)


def configure(
    level: str = "info", secrets: Iterable[str] = (), stream: Any = None
) -> FilteringBoundLogger:
    """Configure structlog for the CLI and return a logger."""
    stream = stream or sys.stderr
    renderer: Any
    if getattr(stream, "isatty", lambda: False)():
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    else:
        renderer = structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"])
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrubber(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    logger: FilteringBoundLogger = structlog.get_logger("btic")
    return logger
