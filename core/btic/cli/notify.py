"""``btic notify test``: the guide's "Send Test" for e-mail notifications."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from btic.cli.base import Runtime, config_option
from btic.errors import UsageError


@click.group("notify")
def notify_group() -> None:
    """E-mail notifications ([notifications.email])."""


@notify_group.command("test")
@config_option
@click.pass_obj
def notify_test_command(runtime: Runtime, config_path: Path | None) -> None:
    """Send a test message and print the SMTP server's answer."""
    from btic import logs
    from btic.notify import notifier_for

    config = runtime.load_config(config_path)
    notifier = notifier_for(config, logs.for_config(config))
    if notifier is None:
        raise UsageError(
            "no [notifications.email] in the configuration; add smtp_host, from_address and to"
        )
    answer = notifier.send(
        "test message",
        f"This is a test message from btic on {socket.gethostname()}.\n\n"
        "Errors of scheduled runs will be sent to this address.\n",
    )
    click.echo(f"sent to {', '.join(notifier.settings.to)}; the server answered: {answer}")


__all__ = ["notify_group"]
