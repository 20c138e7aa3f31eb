"""``btic run``: the schedules, run by a daemon in the foreground."""

from __future__ import annotations

import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import click

from btic.cli.base import Runtime, config_option
from btic.cli.transfers import stopping_on_signals
from btic.config import default_config_path
from btic.errors import WorkFailed

#: What the process exits with after a stop request: SIGTERM is a service's
#: normal stop; SIGINT is a person's Ctrl-C.
EXIT_AFTER = {signal.SIGTERM: 0, signal.SIGINT: 130}


@click.command("run")
@config_option
@click.option("--once", is_flag=True, help="Run what is due, wait for it, and exit.")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve Prometheus metrics (/metrics) and a health check (/healthz) on this port.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="The address to serve metrics on (0.0.0.0: every interface).",
)
@click.option(
    "--stop-timeout",
    type=click.IntRange(1, 3600),
    default=30,
    show_default=True,
    help="Seconds a stop request waits for the items in hand before abandoning them.",
)
@click.pass_obj
def run_command(
    runtime: Runtime,
    config_path: Path | None,
    once: bool,
    metrics_port: int | None,
    metrics_host: str,
    stop_timeout: int,
) -> None:
    """Run the schedules as they come due, until stopped (systemd, containers).

    Keeps one token per site across runs. SIGHUP, or a change of the
    configuration file, reloads it (a configuration that does not load keeps
    the old one running). SIGTERM or SIGINT finish the items in hand, up to
    --stop-timeout, then exit: 0 after SIGTERM, 130 after SIGINT.
    """
    from btic import logs
    from btic.daemon import Daemon

    path = config_path or default_config_path()
    config = runtime.load_config(path)
    config.require_work()
    metrics = None
    if metrics_port is not None:
        from btic.metrics import Metrics

        metrics = Metrics()
    daemon = Daemon(
        lambda: runtime.load_config(path),
        runtime.plugins,
        config_path=path,
        config=config,
        log_for=logs.for_config,
        once=once,
        extra_observers=(metrics,) if metrics is not None else (),
        reporter=metrics,
        call_observer=metrics,
        stop_timeout=timedelta(seconds=stop_timeout),
    )
    if metrics is not None and metrics_port is not None:
        from btic.metrics import serve

        serve(metrics, metrics_port, host=metrics_host, overdue=daemon.overdue)
    with stopping_on_signals(daemon.request_stop, reload=daemon.request_reload) as received:
        stopped = daemon.run()
    code = EXIT_AFTER[received[0]] if received else 0
    if stopped.abandoned:
        # Threads still downloading would hold the interpreter's exit open: leave now,
        # as a crash would (the ledger and the leases are made for it).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        sys.exit(code)
    if once and stopped.failed:
        raise WorkFailed(f"schedule runs failed: {', '.join(stopped.failed)}")


__all__ = ["run_command"]
