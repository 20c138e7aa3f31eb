"""A command imports what it needs when it needs it: ``btic --help`` and
``btic --version`` import no database, HTTP or XML library and no plugin, and
the table ``--help`` lists from is each command's own help. (Modules, not
seconds: ``benchmarks/startup.py`` has the times.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from btic.cli import main
from btic.cli.commands import COMMANDS

#: What the quick commands must not import: each costs tens of milliseconds.
HEAVY = ("sqlalchemy", "httpx", "pydantic", "lxml", "structlog", "rich", "pluggy", "btic_sqlserver",
         "btic_s3", "btic_filesystem", "btic.transfer", "btic.appliance")  # fmt: skip


def _imported_by(args: list[str], cache: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    program = (
        "import sys, json\n"
        "from btic.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env)
    modules = json.loads(done.stderr.rsplit("MODULES ", 1)[1])
    return done, set(modules)


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_help_and_version_import_nothing_heavy(tmp_path):
    first, _ = _imported_by(["--help"], tmp_path)  # lists the plugins' commands once
    assert "sql " in first.stdout  # the SQL plugin's command, listed
    done, modules = _imported_by(["--help"], tmp_path)
    assert done.stdout == first.stdout
    assert _heavy(modules) == []
    for name in COMMANDS:
        assert f"  {name} " in done.stdout, name
    version, modules = _imported_by(["--version"], tmp_path)
    assert version.stdout.startswith("btic ") and _heavy(modules) == []


def test_version_names_every_installed_plugin_and_its_version(tmp_path):
    import importlib.metadata

    done, modules = _imported_by(["--version"], tmp_path)
    lines = done.stdout.splitlines()
    assert lines[0] == f"btic {importlib.metadata.version('btic')}"
    for name, distribution in (("filesystem", "btic-filesystem"), ("s3", "btic-s3"),
                               ("sqlserver", "btic-sqlserver")):  # fmt: skip
        version = importlib.metadata.version(distribution)
        assert f"  plugin {name}: {distribution} {version}" in lines
    assert _heavy(modules) == []  # read from metadata: no plugin imported


def test_a_plugin_installed_after_the_listing_is_listed(tmp_path, distributions):
    _imported_by(["--help"], tmp_path)
    site = distributions.make(
        "btic-shout",
        "1.0",
        {"shout": "btic_shout:Shout"},
        {
            "btic_shout": """
                import btic
                from pydantic import BaseModel, ConfigDict

                class Shout:
                    class Options(BaseModel):
                        model_config = ConfigDict(extra="forbid")

                    @btic.hookimpl
                    def on_session_xml(self, session, xml, ctx):
                        return btic.Delivery(location="x")

                    @btic.hookimpl
                    def register_commands(self, cli):
                        @cli.command("shout")
                        def shout():
                            '''Say it loudly.'''
            """
        },
    )
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PYTHONPATH": path}
    listed = subprocess.run([sys.executable, "-c", "from btic.cli import main; main(['--help'])"],
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert "shout       Say it loudly." in listed.stdout, listed.stdout + listed.stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listed_line_is_the_commands_own(name):
    lazy = COMMANDS[name]
    ctx = click.Context(main)
    command = main.get_command(ctx, name)
    assert command is not None and command.name == name
    assert command.callback is not None and command.callback.__module__ == lazy.module
    assert lazy.short_help == command.get_short_help_str(limit=80)


@pytest.mark.parametrize(
    ("words", "expected"),
    [("btic sy", "sync"), ("btic sq", "sql"), ("btic sync --sch", "--schedule")],
)
def test_shell_completion_offers_commands_plugin_commands_and_options(tmp_path, words, expected):
    """What the README's ``_BTIC_COMPLETE=bash_source`` script asks for each <Tab>."""
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path),
        "_BTIC_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    btic = str(Path(sys.executable).with_name("btic"))
    done = subprocess.run([btic], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert f"plain,{expected}" in done.stdout.splitlines()


def test_a_command_without_a_sql_destination_does_not_load_the_sql_tables(tmp_path):
    """Every command loads every installed plugin; the SQL plugin's tables, their
    dialects and its row models wait until a SQL destination is used."""
    config = tmp_path / "btic.toml"
    config.write_text(
        '[sites.s]\nhost = "h"\nclient_id = "a"\nclient_secret = "x"\n'
        f'[destinations.d]\nplugin = "filesystem"\ndirectory = "{tmp_path / "archive"}"\n'
        '[schedules.every]\nevery = "1h"\n[[schedules.every.transfers]]\n'
        'site = "s"\ndestinations = ["d"]\ndata = ["session"]\n'
    )
    config.chmod(0o600)
    done, modules = _imported_by(["status", "--config", str(config)], tmp_path)
    assert "btic_sqlserver" in modules, done.stderr  # the plugin itself was loaded
    for heavy in ("btic_sqlserver.schema", "btic_sqlserver.rows", "sqlalchemy.dialects.mssql",
                  "sqlalchemy.dialects.mysql", "sqlalchemy.dialects.postgresql"):  # fmt: skip
        assert heavy not in modules, heavy
