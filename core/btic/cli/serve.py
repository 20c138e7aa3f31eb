"""``btic serve``: the read-only viewer over the archive; ``btic serve hash-password``."""

from __future__ import annotations

from pathlib import Path

import click

from btic.cli.base import Runtime, config_option


@click.group("serve", invoke_without_command=True)
@config_option
@click.option("--host", help="The address to listen on [default: [serve] host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="[default: [serve] port, 8080].")
@click.option(
    "--certificate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS certificate (PEM); with --key. Without them, run behind a TLS proxy.",
)
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def serve_group(
    context: click.Context,
    config_path: Path | None,
    host: str | None,
    port: int | None,
    certificate: Path | None,
    key: Path | None,
) -> None:
    """Serve the read-only viewer over the archive: search, sessions, integrity.

    Every page needs a login ([serve] users, argon2id hashes from
    `btic serve hash-password`); nothing it does changes the archive."""
    if context.invoked_subcommand is not None:
        return
    from btic.errors import UsageError

    if (certificate is None) != (key is None):
        raise UsageError("--certificate and --key go together")
    runtime: Runtime = context.obj
    config = runtime.load_config(config_path, secrets=False)
    if not config.serve.users and not config.serve.trusted_proxies:
        raise UsageError(
            "[serve] users is empty and no trusted_proxies are set: nobody could log in; add "
            "a user with a hash from btic serve hash-password"
        )
    import uvicorn

    from btic import logs
    from btic.serve.app import make_app

    # The audit of the audit (who saw what) goes where btic's log goes: [logging].
    logs.for_config(config)

    uvicorn.run(
        make_app(config, runtime.plugins, https=True),
        host=host or config.serve.host,
        port=port or config.serve.port,
        ssl_certfile=str(certificate) if certificate else None,
        ssl_keyfile=str(key) if key else None,
        log_level="warning",
        server_header=False,
        # The client is the TCP peer: a trusted proxy is recognised by its own
        # address, never by a forwarded header another client could send.
        proxy_headers=False,
    )


@serve_group.command("hash-password")
def hash_password_command() -> None:
    """Ask for a password (twice) and print its argon2id hash for [serve] users."""
    from btic.serve.auth import hash_password

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    click.echo(hash_password(password))
