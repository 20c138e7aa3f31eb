"""``btic integrity``: the signing key of the digests, and an auditor's verifier that
needs only the public key and the archive."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import click

from btic.cli.base import echo_json, promise_json


@click.group("integrity")
def integrity_group() -> None:
    """Signed digests: the key pair, and checking an archive or an export with it."""


@integrity_group.command("keygen")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where to write btic-signing.key (owner-only) and btic-signing.pub.",
)
def keygen_command(directory: Path) -> None:
    """Make an Ed25519 key pair for [integrity] signing_key; the public key goes with
    every export, to whoever checks the archive."""
    from btic.integrity import generate_key_pair

    private, public = generate_key_pair(directory)
    click.echo(f'private key: {private} (set [integrity] signing_key = "file:{private}")')
    click.echo(f"public key:  {public} (give it to auditors; btic integrity verify uses it)")


@integrity_group.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The archive's public key (btic-signing.pub).",
)
@click.option(
    "--root",
    help="The directory the archive had when its digests were written, when DIRECTORY "
    "is a copy of it elsewhere: locations are read relative to it.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def verify_command(directory: Path, public_key: Path, root: str | None, as_json: bool) -> None:
    """Check a file-system archive (or a copy of one) against its signed digests alone:
    every signature, every link of the chain, every file's sha256. No state database
    or configuration is read. Exit 1 when anything is found."""
    from btic.errors import WorkFailed
    from btic.integrity import (
        DIGEST_DIRECTORY,
        check_chain,
        latest_entries,
        load_public_key,
        read_digests,
    )

    promise_json(as_json)
    key = load_public_key(public_key.read_bytes(), str(public_key))
    digests = list(read_digests(directory / DIGEST_DIRECTORY))
    problems, documents = check_chain(digests, key)
    findings = [problem.line() for problem in problems]
    checked = 0
    for entry in latest_entries(documents):
        location = str(entry.get("location") or "")
        if entry.get("action") != "delivered" or not location:
            continue
        path = Path(location) if root is None else directory / os.path.relpath(location, root)
        checked += 1
        try:
            digest = hashlib.sha256()
            with path.open("rb") as source:
                for chunk in iter(lambda: source.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError:
            findings.append(f"missing: {path} ({entry.get('item_key')})")
            continue
        if entry.get("sha256") and digest.hexdigest() != entry["sha256"]:
            findings.append(
                f"changed: {path} ({entry.get('item_key')}): sha256 differs from its digest"
            )
    if as_json:
        echo_json(
            {"ok": not findings, "digests": len(digests), "files": checked, "findings": findings}
        )
    else:
        for line in findings:
            click.echo(line)
        click.echo(
            f"{len(digests)} digest(s), {checked} file(s) checked; {len(findings)} finding(s)",
            err=True,
        )
    if findings:
        raise WorkFailed("the archive does not match its digests")
