"""Logging: structlog, readable on a terminal (key=value elsewhere), and JSON
lines in the log directory, one file per day, old files removed.

Known secret values are scrubbed from every event before it is rendered or
written, tracebacks included. Per-item lines (what was delivered where) go to
the file always and to the terminal only when asked for (``-v``): an event
bound with ``console=False`` stays in the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

if TYPE_CHECKING:
    from btic.config import Config

MASK = "********"
#: Log files are named by their UTC day: btic-2026-11-23.jsonl.
FILE_PATTERN = re.compile(r"^btic-(\d{4}-\d{2}-\d{2})\.jsonl$")
#: The key that keeps an event off the terminal (it still reaches the file).
CONSOLE_KEY = "console"


def secret_values(secrets: Iterable[str]) -> list[str]:
    """The values worth scrubbing, longest first (so a secret inside another goes too)."""
    return sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)


def scrub_text(text: str, values: Iterable[str]) -> str:
    """``text`` with every one of ``values`` (see :func:`secret_values`) masked."""
    for secret in values:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def config_secrets(config: Config) -> list[str]:
    """The values of every secret in ``config`` that can be read (one that cannot
    has nothing to leak)."""
    from btic.config import iter_secrets

    return [
        secret.get_secret_value() for _, secret in iter_secrets(config) if secret.problem() is None
    ]


def scrubbing(config: Config) -> Callable[[str], str]:
    """A function that masks ``config``'s secrets in a text."""
    values = secret_values(config_secrets(config))
    return lambda text: scrub_text(text, values)


def scrubber(secrets: Iterable[str]) -> Processor:
    values = secret_values(secrets)

    def scrub(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
        if not values:
            return event
        for key, value in list(event.items()):
            if isinstance(value, str):
                event[key] = scrub_text(value, values)
        return event

    return scrub


class DailyFiles:
    """JSON lines appended to one file per UTC day in ``directory``; files of
    days more than ``retention_days`` back are removed when a day's file is
    opened (the guide's "Log File Removal").

    Lines are written whole with one ``write`` on a file opened for appending,
    so several btic processes (a daemon and a manual ``btic transfer``) can
    share a day's file.

    :param clock: the time now (tests pass a simulated one).
    """

    def __init__(
        self,
        directory: Path,
        retention_days: int,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.directory = directory
        self.retention_days = retention_days
        self.clock = clock
        self._day: date | None = None
        self._file: IO[str] | None = None
        self._lock = threading.Lock()

    def write(self, event: EventDict) -> None:
        line = json.dumps(event, default=str, ensure_ascii=False) + "\n"
        with self._lock:
            stream = self._stream()
            stream.write(line)
            stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def remove_old(self, today: date) -> list[Path]:
        """Remove the files of days before the retention period; return them."""
        oldest = today - timedelta(days=self.retention_days)
        removed = []
        for path in self.directory.glob("btic-*.jsonl"):
            match = FILE_PATTERN.match(path.name)
            if match and date.fromisoformat(match[1]) < oldest:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def _stream(self) -> IO[str]:
        today = self.clock().astimezone(timezone.utc).date()
        if self._file is None or today != self._day:
            if self._file is not None:
                self._file.close()
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # The log names sites, sessions and people: its owner's alone (0600).
            self._file = open(  # noqa: SIM115 - kept open for the day, closed by close()
                self.directory / f"btic-{today.isoformat()}.jsonl",
                "a",
                encoding="utf-8",
                opener=_private,
            )
            self._day = today
            self.remove_old(today)
        return self._file


def _private(path: str, flags: int) -> int:
    """``open``'s opener for a file only its owner reads: created 0600."""
    return os.open(path, flags, 0o600)


def for_config(config: Config, stream: Any = None) -> FilteringBoundLogger:
    """Logging as ``[logging]`` asks, with every secret of ``config`` scrubbed.

    A log directory that cannot be written is said once on stderr; logging to
    the terminal goes on.
    """
    secrets = config_secrets(config)
    files: DailyFiles | None = None
    try:
        config.log_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        files = DailyFiles(config.log_directory, config.logging.log_retention_days)
        files.remove_old(datetime.now(timezone.utc).date())
    except OSError as exc:
        sys.stderr.write(
            f"warning: no log files: {config.log_directory}: {exc.strerror or exc}; "
            "set [logging] directory to a directory btic may write\n"
        )
        files = None
    return configure(config.logging.level, secrets, stream, files=files)


def configure(
    level: str = "info",
    secrets: Iterable[str] = (),
    stream: Any = None,
    *,
    files: DailyFiles | None = None,
) -> FilteringBoundLogger:
    """Configure structlog for the CLI and return a logger.

    :param files: where JSON lines go as well, if anywhere.
    """
    stream = stream or sys.stderr
    renderer: Any
    if getattr(stream, "isatty", lambda: False)():
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    else:
        renderer = structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"])

    def both(logger: WrappedLogger, name: str, event: EventDict) -> Any:
        on_console = event.pop(CONSOLE_KEY, True)
        if files is not None:
            # A full log disk must not stop the archive; the terminal still shows the event.
            with contextlib.suppress(OSError):
                files.write(event)
        if not on_console:
            raise structlog.DropEvent
        return renderer(logger, name, event)

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrubber(secrets),
            both,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    logger: FilteringBoundLogger = structlog.get_logger("btic")
    return logger
