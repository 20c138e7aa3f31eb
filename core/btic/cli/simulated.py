"""Commands around the simulated appliance: ``demo`` and ``sim``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from btic.cli.base import report
from btic.cli.schedules import sync_command
from btic.errors import BticError, UsageError, WorkFailed
from btic.sim.data import Product


@click.command("demo")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("btic-demo"),
    show_default=True,
    help="Where the configuration, state and archive go.",
)
@click.option("--sessions", type=int, default=30, show_default=True)
@click.option("--recording-size", type=int, default=512 * 1024, show_default=True)
@click.option("--force", is_flag=True, help="Replace a btic.toml already in the directory.")
@click.pass_context
def demo_command(
    ctx: click.Context, directory: Path, sessions: int, recording_size: int, force: bool
) -> None:
    """Archive a simulated appliance into ./btic-demo, start to finish."""
    from btic import demo

    appliance, config_path = demo.prepare(
        directory, sessions=sessions, recording_size=recording_size, force=force
    )
    click.echo(f"started a simulated RS appliance at {appliance.url}")
    click.echo(f"wrote {config_path} (client secret in {directory / 'sim-client-secret'})")
    failed = False
    try:
        for schedule in ("every-15-minutes", "nightly"):
            click.echo(f"\n$ btic sync --config {config_path} --schedule {schedule}")
            try:
                # The demo shows what happened, terminal or not.
                ctx.invoke(sync_command, config_path=config_path, schedules=(schedule,), verbose=1)
            except BticError as exc:
                report(exc)
                failed = True
    finally:
        appliance.stop()
    click.echo("")
    for line in demo.describe(directory):
        click.echo(line)
    click.echo(f"state:   {directory / 'btic-state.db'} (the ledger of every delivery)")
    click.echo("\nlook around:")
    click.echo(f"  ls -R {directory / 'archive'}")
    click.echo(f"  btic check --offline --config {config_path}")
    click.echo(
        f"  sqlite3 {directory / 'btic-state.db'} 'select data_type, status, count(*) from "
        "btic_deliveries "
        "group by 1, 2'"
    )
    click.echo(
        "the simulated appliance stopped with the demo; run `btic sim` to start one of your own."
    )
    if failed:
        raise WorkFailed("the demo's transfers had failures")


@click.command("sim")
@click.option("--product", type=click.Choice(["rs", "pa"]), default="rs", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="0 picks a free port.")
@click.option("--tls/--no-tls", default=True, show_default=True)
@click.option("--sessions", type=int, default=40, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--recording-size",
    type=int,
    default=256 * 1024,
    show_default=True,
    help="Bytes per session recording.",
)
@click.option("--backup-size", type=int, default=512 * 1024, show_default=True)
@click.option("--client-id", default=None, help="Generated when not given.")
@click.option("--client-secret", default=None, help="Generated when not given.")
@click.option(
    "--faults", default=None, help="e.g. 'latency=0.2,500:3,reset:1@recording,clock=-3600'."
)
@click.option(
    "--language", default="en", show_default=True, help="Language of 'no matching data' answers."
)
@click.option(
    "--deny", "denied", multiple=True, help="A permission the API account lacks (perm_backup...)."
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the CA certificate is written (a temporary directory by default).",
)
@click.option(
    "--site-name", default="sim", show_default=True, help="Name used in the printed [sites.NAME]."
)
@click.option(
    "--shell-numbering",
    type=click.IntRange(0, 1),
    default=None,
    help="The report numbers command shells from this (RS default 1; PA always 0).",
)
@click.option(
    "--instance-in-urls/--no-instance-in-urls",
    default=True,
    show_default=True,
    help="Whether recording download URLs carry instance=.",
)
def sim_command(
    product: Product,
    host: str,
    port: int,
    tls: bool,
    sessions: int,
    seed: int,
    recording_size: int,
    backup_size: int,
    client_id: str | None,
    client_secret: str | None,
    faults: str | None,
    language: str,
    denied: tuple[str, ...],
    state_dir: Path | None,
    site_name: str,
    shell_numbering: int | None,
    instance_in_urls: bool,
) -> None:
    """Serve a simulated RS or PA appliance until interrupted."""
    import signal
    import threading

    from btic.sim import FaultPlan, SimulatedAppliance

    try:
        plan = FaultPlan.parse(faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    appliance = SimulatedAppliance(
        product,
        host=host,
        port=port,
        tls=tls,
        sessions=sessions,
        seed=seed,
        recording_size=recording_size,
        backup_size=backup_size,
        client_id=client_id,
        client_secret=client_secret,
        faults=plan,
        language=language,
        permissions=dict.fromkeys(denied, "0"),
        state_dir=state_dir,
        shell_report_from=shell_numbering,
        instance_in_urls=instance_in_urls,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        appliance.start()
    except OSError as exc:
        raise UsageError(
            f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose another port, or 0 for a free one"
        ) from None
    try:
        click.echo(f"simulated {product.upper()} appliance at {appliance.url}")
        click.echo(f"client id:     {appliance.client_id}")
        click.echo(f"client secret: {appliance.client_secret}")
        if appliance.ca_path:
            click.echo(f"CA certificate: {appliance.ca_path}")
        click.echo("\n# paste into btic.toml:")
        click.echo(appliance.site_toml(site_name), nl=False)
        click.echo("\n(Ctrl-C to stop)")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        appliance.stop()
