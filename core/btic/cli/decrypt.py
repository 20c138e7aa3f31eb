"""``btic decrypt``: items sealed to age recipients (``encrypt``), back to plain bytes."""

from __future__ import annotations

from pathlib import Path

import click

from btic.cli.base import echo_json, promise_json


@click.command("decrypt", short_help="Decrypt .age files that a destination with `encrypt` stored.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-i",
    "--identity",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="An age identity file (AGE-SECRET-KEY-1..., as age-keygen writes it).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A directory for the plain files [default: beside each .age file].",
)
@click.option("--force", is_flag=True, help="Replace existing plain files.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def decrypt_command(
    paths: tuple[Path, ...], identity: Path, out: Path | None, force: bool, as_json: bool
) -> None:
    """Decrypt .age files that a destination with `encrypt` stored: files, or every
    .age file under a directory (an export, a copy of an archive).

    In an export, each file's plain sha256 is checked against the one recorded when
    it was delivered. `age -d -i IDENTITY FILE` opens one file the same way. Exit 1
    when a file cannot be opened or does not match.
    """
    from btic.encryption import read_identities
    from btic.errors import BticError, WorkFailed
    from btic.unsealing import open_sealed

    promise_json(as_json)
    identities = read_identities(identity)
    opened = []
    for result in open_sealed(list(paths), identities, out=out, force=force):
        opened.append(result)
        if as_json:
            continue
        if result.problem is not None:
            click.echo(f"{result.source}: {result.problem}")
        elif not result.ok:
            click.echo(
                f"{result.source}: decrypted to {result.target}, but its sha256 {result.sha256} "
                f"is not the {result.expected} recorded when it was delivered"
            )
        else:
            checked = " (as recorded at delivery)" if result.expected else ""
            click.echo(
                f"wrote {result.target} ({result.size} bytes, sha256 {result.sha256}{checked})"
            )
    failed = [result for result in opened if not result.ok]
    if as_json:
        echo_json(
            {
                "ok": not failed and bool(opened),
                "files": [result.as_json() for result in opened],
            }
        )
    if not opened:
        raise BticError("no .age file under the paths given: nothing was decrypted")
    if failed:
        raise WorkFailed()
