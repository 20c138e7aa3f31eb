"""``btic integrity``: the signing key of the digests, and an auditor's verifier that
needs only the public key and the archive."""

from __future__ import annotations

import hashlib
import json
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
    """Check a file-system archive, a copy of one, or an unpacked btic export against
    its signed digests alone: every signature, every link of the chain, every file's
    sha256. No state database or configuration is read. Exit 1 when anything is found."""
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
    top = directory / DIGEST_DIRECTORY
    manifest = directory / "manifest.json"
    if manifest.exists():
        # An export: a chain per destination, and the items where the manifest put them.
        chains = {d.name: list(read_digests(d)) for d in sorted(top.iterdir()) if d.is_dir()}
        items = json.loads(manifest.read_bytes())["items"]
        exported = {i["location"]: directory / i["path"] for i in items if i.get("path")}
    else:
        chains = {"": list(read_digests(top))}
        exported = None
    findings: list[str] = []
    checked = digests = 0
    for chain in chains.values():
        digests += len(chain)
        problems, documents = check_chain(chain, key)
        findings += [problem.line() for problem in problems]
        for entry in latest_entries(documents):
            location = str(entry.get("location") or "")
            if entry.get("action") != "delivered" or not location:
                continue
            if exported is not None:
                if location not in exported:
                    continue  # not part of this export
                path = exported[location]
            elif root is None:
                path = Path(location)
            else:
                path = directory / os.path.relpath(location, root)
            checked += 1
            finding = _against(path, entry)
            if finding is not None:
                findings.append(finding)
    if as_json:
        echo_json({"ok": not findings, "digests": digests, "files": checked, "findings": findings})
    else:
        for line in findings:
            click.echo(line)
        click.echo(
            f"{digests} digest(s), {checked} file(s) checked; {len(findings)} finding(s)",
            err=True,
        )
    if findings:
        raise WorkFailed("the archive does not match its digests")


def _against(path: Path, entry: dict[str, object]) -> str | None:
    """What is wrong with the file at ``path`` against its digest's entry, if anything."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as source:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return f"missing: {path} ({entry.get('item_key')})"
    if entry.get("sha256") and digest.hexdigest() != entry["sha256"]:
        return f"changed: {path} ({entry.get('item_key')}): sha256 differs from its digest"
    return None
