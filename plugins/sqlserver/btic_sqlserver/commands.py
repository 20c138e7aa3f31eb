"""``btic sql``: the storage database's commands (added by the plugin's
``register_commands`` hook)."""

from __future__ import annotations

from typing import Any

import click

import btic
from btic import DatabaseUrl, UsageError
from btic.plugin import Runtime, config_option, resolve_secret
from btic_sqlserver import schema
from btic_sqlserver.options import SqlServerOptions


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


@sql_group.command("copy")
@config_option
@click.option("--from", "source", required=True, help="The sqlserver destination to copy.")
@click.option(
    "--to",
    "target",
    required=True,
    help="The new database: a SQLAlchemy URL or an ODBC connection string "
    "(or env:NAME / file:PATH holding one).",
)
@click.pass_obj
def copy_command(runtime: Runtime, config_path: Any, source: str, target: str) -> None:
    """Copy a storage database to a new server, in batches; resumable; verified by
    the row count of every table."""
    from sqlalchemy import exc as sa_exc

    from btic_sqlserver.connection import cause, database_of, make_engine, odbc_url
    from btic_sqlserver.copying import copy_database
    from btic_sqlserver.writer import Writer

    config = runtime.load_config(config_path, secrets=False)  # only the two databases' URLs
    destination = config.destinations.get(source)
    if destination is None or destination.plugin != "sqlserver":
        named = sorted(n for n, d in config.destinations.items() if d.plugin == "sqlserver")
        raise UsageError(
            f"--from {source}: not a sqlserver destination of {config.path}; "
            f"those are: {', '.join(named) or 'none'}"
        )
    options = destination.options
    assert isinstance(options, SqlServerOptions)  # validated by this plugin's model
    source_url, source_where = database_of(options, config.base_dir)
    try:
        secret = resolve_secret(target, base_dir=config.base_dir)
    except ValueError as exc:
        raise UsageError(f"--to: {exc}") from None
    target_url = secret.get_secret_value()
    if "://" not in target_url:
        try:
            target_url = odbc_url(target_url)
        except ValueError as exc:
            raise UsageError(f"--to: {exc}") from None
    target_where = secret.reference or DatabaseUrl(target_url).display

    def progress(done: int, total: int) -> None:
        click.echo(f"{done:,} of {total:,} sessions", err=True)

    writer = Writer(make_engine(target_url, target_where), target_where)
    source_engine = make_engine(source_url, source_where)
    try:
        report = copy_database(source_engine, writer, progress=progress)
    except btic.DestinationError:
        raise
    except sa_exc.SQLAlchemyError as exc:
        raise btic.DestinationError(
            f"copying {source_where} to {target_where}: {cause(exc)}; run the same command "
            "again to resume"
        ) from None
    finally:
        source_engine.dispose()
        writer.engine.dispose()
    click.echo(f"{'table':<20} {'source':>10} {'target':>10}")
    for table, (in_source, in_target) in report.counts.items():
        click.echo(f"{table:<20} {in_source:>10,} {in_target:>10,}")
    click.echo(f"{report.copied:,} sessions copied, {report.present:,} already there", err=True)
    if report.differing:
        raise btic.DestinationError(
            f"{target_where}: row counts differ from {source_where} in "
            f"{', '.join(report.differing)} (the target holds other sessions, or was "
            "changed during the copy)"
        )


__all__ = ["sql_group"]
