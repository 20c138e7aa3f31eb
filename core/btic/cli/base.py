"""What every command shares: the group, the runtime, errors turned into exit codes."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

import btic
from btic.config import Config, default_config_path, load_config
from btic.errors import BticError
from btic.plugins import PluginManager, PluginWarning

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file [default: $BTIC_CONFIG or ./btic.toml].",
)


class Commands(click.Group):
    """Reports a :class:`BticError` from any command as ``error:`` lines and its exit
    code, and offers the commands installed plugins add through their
    ``register_commands`` hook (plugins are loaded only when such a command is named
    or the commands are listed, never at import)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        own = super().list_commands(ctx)
        return sorted({*own, *ctx.ensure_object(Runtime).plugin_commands(own)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        own = super().list_commands(ctx)
        found = ctx.ensure_object(Runtime).plugin_commands(own).get(cmd_name)
        return found if isinstance(found, click.Command) else None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BticError as exc:
            report(exc)
            _keep_json_promise(ctx, exc.lines())
            ctx.exit(exc.exit_code)
        except click.ClickException as exc:
            _keep_json_promise(ctx, [exc.format_message()])
            raise


def _keep_json_promise(ctx: click.Context, problems: list[str]) -> None:
    """A command asked for ``--json`` that failed before printing its document
    prints one now, so that whatever reads stdout always gets one."""
    runtime = ctx.obj
    if isinstance(runtime, Runtime) and runtime.json_owed:
        echo_json({"ok": False, "problems": problems})


def promise_json(as_json: bool) -> None:
    """This command prints one JSON document on stdout (``--json``): if it fails
    before it has printed it, the group prints ``{"ok": false, "problems": [...]}``."""
    runtime = click.get_current_context().find_object(Runtime)
    if runtime is not None:
        runtime.json_owed = as_json


def echo_json(document: object) -> None:
    """Print the command's JSON document on stdout (the promise is kept)."""
    click.echo(json.dumps(document, indent=2))
    runtime = click.get_current_context().find_object(Runtime)
    if runtime is not None:
        runtime.json_owed = False


def report(exc: BticError) -> None:
    for line in exc.lines():
        click.echo(f"error: {line}", err=True)
    if exc.footer:
        click.echo(exc.footer, err=True)


class Runtime:
    """What the commands share: the plugins, loaded on first use."""

    def __init__(self) -> None:
        self._plugins: PluginManager | None = None
        self._commands: dict[str, Any] | None = None
        #: the command promised one JSON document on stdout and has not printed it
        self.json_owed = False

    def plugin_commands(self, own: Iterable[str]) -> dict[str, Any]:
        """The commands installed plugins add, by name (none may take one of ``own``)."""
        if self._commands is None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", PluginWarning)
                self._commands = self.plugins.commands(taken=own)
            for message in caught:
                warn(str(message.message))
        return self._commands

    def close(self) -> None:
        """The command is done: every destination it made is closed (``on_close``)."""
        if self._plugins is None:
            return
        with warnings.catch_warnings(record=True) as caught:
            # Said as plain lines, like the plugins' load warnings.
            warnings.simplefilter("always", PluginWarning)
            self._plugins.close()
        for message in caught:
            warn(str(message.message))

    @property
    def plugins(self) -> PluginManager:
        if self._plugins is None:
            with warnings.catch_warnings():
                # Reported below as plain lines, not as Python warnings.
                warnings.simplefilter("ignore", PluginWarning)
                self._plugins = PluginManager.from_environment().discover()
            for message in self._plugins.warnings:
                warn(message)
        return self._plugins

    def load_config(self, path: Path | None, *, secrets: bool = True) -> Config:
        """The configuration at ``path`` (or the default); its warnings are printed.

        :param secrets: whether the command talks to appliances or destinations
            and so needs every secret now; a command that reads only the state
            database and the archive passes False, and reads a secret (a
            destination's credentials) only when it uses it.
        :raises ConfigError: with every problem, and the file they are in.
        """
        config = load_config(path or default_config_path(), self.plugins)
        for message in config.warnings:
            warn(message)
        if secrets:
            config.require_secrets()
        return config


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(btic.__version__, prog_name="btic", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Archive BeyondTrust session reports, recordings and backups."""
    # Made already when a plugin's command was looked for.
    runtime = ctx.ensure_object(Runtime)
    ctx.call_on_close(runtime.close)
