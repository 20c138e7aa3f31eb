"""Exceptions that cross the boundary between btic and its users or plugins.

Every message is written for the person who has to act on it: it names the
thing that failed (a config key, a site, a destination) and what to do.
"""

from __future__ import annotations

import errno
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

#: Exit codes of the command line.
EXIT_OK = 0
#: The work failed: an appliance or destination could not be reached, an item failed.
EXIT_FAILED = 1
#: The configuration or the command line is wrong.
EXIT_USAGE = 2


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration.

    :param path: where in the configuration, in dotted form
        (``schedules.nightly.transfers[0].site``); empty for the file itself.
    :param message: what is wrong and what is allowed.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class BticError(Exception):
    """Base class of the errors btic reports to a user without a traceback.

    The command line prints :meth:`lines`, each as ``error: ...``, then
    :attr:`footer` if any, and exits with :attr:`exit_code`.
    """

    exit_code: ClassVar[int] = EXIT_FAILED

    def lines(self) -> list[str]:
        return [str(self) or type(self).__name__]

    @property
    def footer(self) -> str | None:
        return None


def own_failure(exc: BaseException) -> str:
    """How btic's own failure reads in a run's record: a :class:`BticError` by its
    message; anything else (a bug, a plugin's) with its type."""
    return str(exc) if isinstance(exc, BticError) else f"{type(exc).__name__}: {exc}"


class Interrupted(BticError):
    """The run was stopped by a signal after the item in hand; its summary is printed."""

    def lines(self) -> list[str]:
        return []


class InterruptedByUser(Interrupted):
    """SIGINT (Ctrl-C): exit 130, as shells expect."""

    exit_code = 130


class InterruptedByService(Interrupted):
    """SIGTERM (a service manager stopping btic): exit 143."""

    exit_code = 143


def interruption(signum: int) -> Interrupted:
    """The error that ends a command a signal stopped: SIGINT is the user's
    (exit 130), anything else the service manager's (exit 143)."""
    if signum == signal.SIGINT:
        return InterruptedByUser("interrupted")
    return InterruptedByService("stopped")


class UsageError(BticError):
    """The command line asks for something the configuration does not have.

    :param messages: one line each.
    """

    exit_code = EXIT_USAGE

    def __init__(self, *messages: str):
        super().__init__("\n".join(messages))
        self.messages = messages

    def lines(self) -> list[str]:
        return list(self.messages)


class WorkFailed(BticError):
    """A run ended with failures, each already reported in its summary."""

    def lines(self) -> list[str]:
        return []


class ConfigError(BticError):
    """The configuration cannot be used.

    Raised by the loader with every problem found (not just the first), and by
    a plugin's ``on_configure`` with a message a user can act on. A plugin
    raises it with a plain message; the core adds the destination's path.

    :param problems: one message, or the list of :class:`ConfigProblem` found.
    :param source: the configuration file, when the problems are in one.
    """

    exit_code = EXIT_USAGE

    def __init__(self, problems: str | list[ConfigProblem], source: Path | None = None):
        if isinstance(problems, str):
            problems = [ConfigProblem("", problems)]
        self.problems: list[ConfigProblem] = list(problems)
        self.source = source
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]

    @property
    def footer(self) -> str | None:
        if self.source is None:
            return None
        count = len(self.problems)
        return f"{self.source}: {count} problem{'s' if count != 1 else ''}"


class DestinationError(BticError):
    """A destination could not take an item.

    Raised by plugins. The message is shown to the user as it is, so it should
    name the path, table, bucket or key and the cause ("/srv/archive: No space
    left on device"). The core records the failure in the ledger and retries
    the item on the next run.

    :param message: what failed and why, for the user.
    :param permanent: True when retrying cannot help (the item itself is
        unacceptable to this destination); the ledger then reports it instead
        of retrying it on every run.
    """

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class DestinationBusy(DestinationError):
    """The destination's service is busy and said when to come back (HTTP 429 or
    503 with ``Retry-After``, a throttled API).

    Raised by plugins instead of sleeping inside a hook. The core pauses every
    delivery to this destination for ``retry_after`` seconds and offers the same
    item again; items stay pending meanwhile, and nothing is recorded as failed.
    Should the destination stay busy for longer than the run's patience, it is
    left alone for the rest of the run, its items pending for the next.

    :param message: what the service said, for the user.
    :param retry_after: seconds to wait before the next delivery to it.
    """

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class NotificationError(BticError):
    """An e-mail notification could not be sent (the SMTP server's words, and the fix)."""


class BrokerError(BticError):
    """The task broker (``[executor] broker_url``) did not take a task."""


#: The errors of a file system with no room left (EDQUOT: the user's quota).
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class SpoolError(BticError):
    """The spool, where downloads wait until every destination has them, cannot be
    created or written."""

    @classmethod
    def writing(cls, directory: Path, exc: OSError) -> SpoolError:
        """A download or report that could not be written into ``directory``: the
        local disk's failure, not the appliance's nor the item's."""
        if exc.errno in _DISK_FULL:
            fix = (
                "free space on its disk (it holds each report being read and each "
                "recording until every destination has it)"
            )
        else:
            fix = "check its disk, and that btic's user may write there"
        return cls(
            f"spool {directory}: {exc.strerror or exc}; {fix}. Nothing was lost: the items "
            "stay pending for the next run"
        )


class PluginLoadError(BticError):
    """A plugin could not be imported or its hook implementations are invalid."""


class ApplianceError(BticError):
    """Talking to an appliance failed.

    The message names the site, what was asked (report and parameters) and,
    where there is one, what to do about it.

    :param site: the site's name in the configuration.
    :param message: the full message for the user.
    """

    def __init__(self, site: str, message: str):
        super().__init__(message)
        self.site = site


class ApplianceUnreachable(ApplianceError):
    """No answer, or only server errors, until the retry budget ran out."""


class TlsVerificationError(ApplianceError):
    """The appliance's certificate is not trusted."""


class AuthenticationError(ApplianceError):
    """The client ID/secret were refused, or tokens keep being refused."""


class PermissionDenied(ApplianceError):
    """The API account lacks a permission (the appliance says "Document Not Found")."""


class ReportError(ApplianceError):
    """The appliance answered a report with an ``<error>``, or with XML btic refuses."""


class MalformedReport(ReportError):
    """A report answer that is not well-formed XML (a character XML forbids, a
    broken tag): the batch is split until the session that holds it stands alone."""


class ReportTooLarge(ApplianceError):
    """A report answer grew past the size btic will parse at once
    (``sites.NAME.max_session_megabytes``); reading stopped there."""


class RecordingExpired(ApplianceError):
    """The appliance no longer keeps this recording; retrying cannot help."""


class RecordingUnavailable(ApplianceError):
    """The appliance has no such recording (yet)."""


class UnprovenBody(ApplianceError):
    """A recording or backup whose answer does not say where its body ends (no
    ``Content-Length``, not chunked): refused, since a cut cannot be told from the
    end. The item stays pending; the next run asks again."""
