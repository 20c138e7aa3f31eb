"""``btic backup decrypt``: a backup encrypted with ``backup_password``, back to plain bytes."""

from __future__ import annotations

from pathlib import Path

import click

from btic import encryption
from btic.cli.base import Runtime, config_option
from btic.errors import UsageError
from btic.secrets import ENV_PREFIX, FILE_PREFIX, resolve_secret


@click.group("backup")
def backup_group() -> None:
    """Work with archived backups."""


@backup_group.command("decrypt")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the plain backup goes [default: FILE without .age].",
)
@click.option(
    "--passphrase",
    "reference",
    default=None,
    help="env:NAME or file:PATH holding the passphrase.",
)
@click.option(
    "--site", default=None, help="Use this site's backup_password from the configuration."
)
@config_option
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.pass_obj
def decrypt_command(
    runtime: Runtime,
    file: Path,
    output: Path | None,
    reference: str | None,
    site: str | None,
    config_path: Path | None,
    force: bool,
) -> None:
    """Decrypt a backup that btic encrypted with a site's backup_password.

    The file is a standard age file: `age -d FILE > backup.nsb` does the same.
    Without --passphrase or --site, the passphrase is asked for.
    """
    if output is None:
        if file.suffix != f".{encryption.EXTENSION}":
            raise UsageError(f"{file} does not end in .{encryption.EXTENSION}: give --output")
        output = file.with_suffix("")
    if output.exists() and not force:
        raise UsageError(f"{output} exists; use --force to replace it")
    if reference is not None:
        if not reference.startswith((ENV_PREFIX, FILE_PREFIX)):
            raise UsageError(
                "--passphrase takes env:NAME or file:PATH, so the passphrase stays out of the "
                "shell history; leave it out to be asked"
            )
        try:
            passphrase = resolve_secret(reference).get_secret_value()
        except ValueError as exc:
            raise UsageError(f"--passphrase: {exc}") from None
    elif site is not None:
        config = runtime.load_config(config_path, secrets=False)  # the site's password, when used
        config.require(sites=[site])
        secret = config.sites[site].backup_password
        if secret is None:
            raise UsageError(f"sites.{site} has no backup_password")
        passphrase = secret.get_secret_value()
    else:
        passphrase = click.prompt("Passphrase", hide_input=True, err=True)
    size = encryption.decrypt_file(file, output, passphrase)
    click.echo(f"wrote {output} ({size} bytes)")
