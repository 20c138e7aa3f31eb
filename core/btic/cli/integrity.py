"""``btic integrity``: the signing key of the digests, and an auditor's verifier that
needs only the public key and the archive."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from btic.cli.base import Runtime, echo_json, promise_json

if TYPE_CHECKING:
    from btic.archive_check import DestinationArchive


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
@click.argument("target")
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The archive's public key (btic-signing.pub).",
)
@click.option(
    "--root",
    help="The directory the archive had when its digests were written, when TARGET "
    "is a copy of it elsewhere: locations are read relative to it.",
)
@click.option("--endpoint-url", help="s3://: an S3-compatible store's URL (MinIO, Ceph...).")
@click.option("--region", help="s3://: the bucket's region.")
@click.option("--profile", help="s3://: a profile of the AWS shared config files.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def verify_command(
    runtime: Runtime,
    target: str,
    public_key: Path,
    root: str | None,
    endpoint_url: str | None,
    region: str | None,
    profile: str | None,
    as_json: bool,
) -> None:
    """Check an archive against its signed digests alone: a file-system archive, a
    copy of one, an unpacked btic export (TARGET a directory), or an S3 bucket
    (TARGET s3://BUCKET/PREFIX, credentials from the environment or --profile, read
    through the S3 plugin). Every signature, every link of the chain, every item's
    sha256. No state database or configuration is read. Exit 1 when anything is found.
    """
    from btic.archive_check import Archive, DirectoryArchive, check_archive
    from btic.errors import WorkFailed
    from btic.integrity import load_public_key

    promise_json(as_json)
    key = load_public_key(public_key.read_bytes(), str(public_key))
    archive: Archive
    if target.startswith("s3://"):
        s3 = {"endpoint_url": endpoint_url, "region": region, "profile": profile}
        archive = _bucket(runtime, target, {k: v for k, v in s3.items() if v})
    else:
        directory = Path(target)
        if not directory.is_dir():
            raise click.BadParameter(
                f"{target} is not a directory (or s3://BUCKET/PREFIX)", param_hint="TARGET"
            )
        archive = DirectoryArchive(directory, root)
    report = check_archive(archive, key)
    if as_json:
        echo_json(report.as_json())
    else:
        for line in report.findings:
            click.echo(line)
        click.echo(
            f"{report.digests} digest(s), {report.files} item(s) checked; "
            f"{len(report.findings)} finding(s)",
            err=True,
        )
    if report.findings:
        raise WorkFailed("the archive does not match its digests")


def _bucket(runtime: Runtime, target: str, options: dict[str, str]) -> DestinationArchive:
    """The bucket of ``s3://BUCKET/PREFIX``, through the S3 plugin."""
    from btic import __version__
    from btic.archive_check import DestinationArchive
    from btic.types import AppContext

    bucket, _, prefix = target.removeprefix("s3://").partition("/")
    if not bucket:
        raise click.BadParameter("s3:// needs a bucket: s3://BUCKET/PREFIX", param_hint="TARGET")
    info = runtime.plugins.get("s3")  # a ConfigError says it is not installed
    validated = info.options_model.model_validate({"bucket": bucket, "prefix": prefix, **options})
    app = AppContext(config_dir=Path.cwd(), version=__version__)
    runtime.plugins.add_destination(target, "s3", validated, app)
    return DestinationArchive(runtime.plugins, target)
