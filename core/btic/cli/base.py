"""What every command shares: the group, the runtime, errors turned into exit codes."""

from __future__ import annotations

import warnings
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
    """Reports a :class:`BticError` from any command as ``error:`` lines and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BticError as exc:
            report(exc)
            ctx.exit(exc.exit_code)


def report(exc: BticError) -> None:
    for line in exc.lines():
        click.echo(f"error: {line}", err=True)
    if exc.footer:
        click.echo(exc.footer, err=True)


class Runtime:
    """What the commands share: the plugins, loaded on first use."""

    def __init__(self) -> None:
        self._plugins: PluginManager | None = None

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

    def load_config(self, path: Path | None) -> Config:
        """The configuration at ``path`` (or the default); its warnings are printed.

        :raises ConfigError: with every problem, and the file they are in.
        """
        config = load_config(path or default_config_path(), self.plugins)
        for message in config.warnings:
            warn(message)
        return config


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(btic.__version__, prog_name="btic", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Archive BeyondTrust session reports, recordings and backups."""
    ctx.obj = Runtime()
