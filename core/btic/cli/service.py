"""``btic run``: the schedules, run by a daemon in the foreground; ``btic worker``:
a Celery worker that runs the transfers a ``btic run --executor celery`` enqueues."""

from __future__ import annotations

import logging
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
@click.option(
    "--executor",
    type=click.Choice(["local", "celery"]),
    default=None,
    help="Run transfers here (local) or enqueue them for btic worker processes "
    "(celery); default: [executor] kind.",
)
@click.pass_obj
def run_command(
    runtime: Runtime,
    config_path: Path | None,
    once: bool,
    metrics_port: int | None,
    metrics_host: str,
    stop_timeout: int,
    executor: str | None,
) -> None:
    """Run the schedules as they come due, until stopped (systemd, containers).

    Keeps one token per site across runs. SIGHUP, or a change of the
    configuration file, reloads it (a configuration that does not load keeps
    the old one running). SIGTERM or SIGINT finish the items in hand, up to
    --stop-timeout, then exit: 0 after SIGTERM, 130 after SIGINT. Under systemd
    with ``Type=notify`` it says when it is ready and pings ``WatchdogSec=``.
    """
    from btic import logs
    from btic.daemon import Daemon
    from btic.systemd import Notifier

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
        executor=executor,
        notifier=Notifier.from_environment(),
    )
    if metrics is not None and metrics_port is not None:
        from btic.metrics import serve

        metrics.watch_tasks(daemon.task_snapshot)

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


@click.command("worker")
@config_option
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 256),
    default=4,
    show_default=True,
    help="Tasks this worker runs at once (threads of one process, sharing one token per site).",
)
@click.option(
    "--queues",
    "-Q",
    default=None,
    help="Comma-separated queues to take tasks from; default: [executor] queue.",
)
@click.option(
    "--prefetch",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Tasks reserved per running task (1: a busy worker holds none an idle one could run).",
)
@click.option("--name", "-n", default=None, help="The worker's node name [default: btic@HOST].")
@click.pass_obj
def worker_command(
    runtime: Runtime,
    config_path: Path | None,
    concurrency: int,
    queues: str | None,
    prefetch: int,
    name: str | None,
) -> None:
    """Run the transfer tasks of a distributed btic (``[executor] kind = "celery"``).

    Needs the broker ([executor] broker_url), the shared state database (PostgreSQL)
    and every destination the tasks name, reachable from this machine; ``btic check``
    says whether they are. SIGTERM drains the worker: it takes no new task, ends the
    running ones after the items in hand, sends them back to the queue, and exits.
    """
    from btic import logs
    from btic.executor.app import celery_app
    from btic.executor.worker import Worker, register
    from btic.notify import notifiers
    from btic.systemd import Notifier, WatchdogThread

    path = config_path or default_config_path()
    config = runtime.load_config(path)
    log = logs.for_config(config)
    worker = Worker(config, runtime.plugins, log=log, observers=notifiers(config, log))
    systemd = Notifier.from_environment()
    watchdog = WatchdogThread(systemd)
    try:
        app = celery_app(config.executor)
        app.conf.worker_prefetch_multiplier = prefetch
        register(app, worker)

        from celery.signals import worker_ready, worker_shutting_down

        def ready(**_: object) -> None:
            systemd.ready(f"taking tasks from {queues or config.executor.queue}")
            watchdog.start()

        def stopping(**_: object) -> None:
            systemd.stopping("draining: the tasks in hand go back to the queue")
            worker.stop.set()

        worker_ready.connect(ready, weak=False)
        worker_shutting_down.connect(stopping, weak=False)
        # Celery's log level applies to every library: one line per HTTP request is noise.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        log.info("btic worker starting", config=str(path), pid=os.getpid(), concurrency=concurrency)
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                f"--queues={queues or config.executor.queue}",
                f"--hostname={name or 'btic@%h'}",
                f"--loglevel={config.logging.level.upper()}",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        watchdog.stop()
        worker.close()


__all__ = ["run_command", "worker_command"]
