"""``btic sql``: the storage database's commands (found through the
``btic.commands`` entry point)."""

from __future__ import annotations

import click

from btic_sqlserver import schema


@click.group("sql")
def sql_group() -> None:
    """The SQL storage database of the sqlserver plugin."""


@sql_group.command("schema")
@click.option(
    "--dialect",
    type=click.Choice(schema.DIALECTS),
    default="mssql",
    show_default=True,
    help="The database the statements are for.",
)
def schema_command(dialect: str) -> None:
    """Print the DDL of the storage tables, for DBAs who create them themselves."""
    click.echo(schema.ddl(dialect), nl=False)


__all__ = ["sql_group"]
