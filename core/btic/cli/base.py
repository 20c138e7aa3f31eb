"""What every command shares: the group, the runtime, errors turned into exit codes."""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from btic.cli.commands import COMMANDS
from btic.errors import BticError

if TYPE_CHECKING:
    from btic.config import Config
    from btic.plugins import PluginManager

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file [default: $BTIC_CONFIG or ./btic.toml].",
)


class Commands(click.Group):
    """Reports a :class:`BticError` from any command as ``error:`` lines and its exit
    code, and offers btic's own commands (:mod:`btic.cli.commands`, each module
    imported when its command is named) and those installed plugins add through
    their ``register_commands`` hook (plugins are loaded only when such a command
    is named; listing them reads :mod:`btic.cli.listing`'s record)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from btic.cli.listing import plugin_command_lines

        return sorted({*COMMANDS, *plugin_command_lines(ctx.ensure_object(Runtime), COMMANDS)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = COMMANDS.get(cmd_name)
        if lazy is not None:
            command = getattr(importlib.import_module(lazy.module), lazy.attribute)
            return command if isinstance(command, click.Command) else None
        found = ctx.ensure_object(Runtime).plugin_commands(COMMANDS).get(cmd_name)
        return found if isinstance(found, click.Command) else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of ``btic --help`` from the table and the plugins' record: no
        command module or plugin is imported to show it."""
        from btic.cli.listing import plugin_command_lines

        lines = {name: lazy.short_help for name, lazy in COMMANDS.items()}
        lines.update(plugin_command_lines(ctx.ensure_object(Runtime), COMMANDS))
        limit = formatter.width - 6 - max(len(name) for name in lines)
        rows = [(name, _cut(lines[name], limit)) for name in sorted(lines)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


def _cut(line: str, limit: int) -> str:
    """``line`` in at most ``limit`` characters, cut between words with ``...``."""
    if len(line) <= limit:
        return line
    words, kept = line.split(), ""
    for word in words:
        if len(kept) + len(word) + 4 > limit:
            break
        kept = f"{kept} {word}" if kept else word
    return kept.rstrip(".,;:") + "..."


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
        from btic.plugins import PluginWarning

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
        from btic.plugins import PluginWarning

        with warnings.catch_warnings(record=True) as caught:
            # Said as plain lines, like the plugins' load warnings.
            warnings.simplefilter("always", PluginWarning)
            self._plugins.close()
        for message in caught:
            warn(str(message.message))

    @property
    def plugins(self) -> PluginManager:
        from btic.plugins import PluginManager, PluginWarning

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
        from btic.config import default_config_path, load_config

        config = load_config(path or default_config_path(), self.plugins)
        for message in config.warnings:
            warn(message)
        if secrets:
            config.require_secrets()
        return config


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``btic --version``: btic's, then each installed plugin's, read from metadata
    (a bug report says what was running without loading anything)."""
    if not value or ctx.resilient_parsing:
        return
    from btic import __version__
    from btic.entry_points import installed

    click.echo(f"btic {__version__}")
    for plugin in installed():
        click.echo(f"  plugin {plugin.name}: {plugin.distribution} {plugin.version}")
    ctx.exit()


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_versions,
    help="Show btic's version and each installed plugin's, and exit.",
)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Archive BeyondTrust session reports, recordings and backups."""
    # Made already when a plugin's command was looked for.
    runtime = ctx.ensure_object(Runtime)
    ctx.call_on_close(runtime.close)
