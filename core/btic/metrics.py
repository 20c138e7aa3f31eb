"""Prometheus metrics and a health check for the daemon (``btic run --metrics-port``).

:class:`Metrics` listens where the daemon's work happens — every item
settled (a :class:`~btic.transfer.Reporter`), every appliance call (a
:class:`~btic.appliance.connection.CallObserver`), every schedule run (a
:class:`~btic.scheduler.ScheduleObserver`) — and counts in a registry of its
own; :func:`serve` exposes it with prometheus-client's own WSGI app, beside
``/healthz``, which answers 503 naming the schedules that are overdue.

prometheus-client is an optional dependency: ``pip install 'btic[metrics]'``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from btic.errors import UsageError
from btic.statuses import RunStatus

if TYPE_CHECKING:
    from btic.executor.dispatch import TaskSnapshot
    from btic.scheduler import ScheduleOutcome
    from btic.state.records import ScheduleTimes


class Metrics:
    """The daemon's counters, in a registry of their own (never the process-global one)."""

    def __init__(self) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise UsageError(
                "--metrics-port needs prometheus-client: pip install 'btic[metrics]'"
            ) from None
        self.registry = prom.CollectorRegistry()
        item_labels = ["site", "destination", "data_type"]
        self.items = prom.Counter(
            "btic_items",
            "Items settled, by outcome (delivered, skipped, expired, failed)",
            [*item_labels, "status"],
            registry=self.registry,
        )
        self.bytes = prom.Counter(
            "btic_delivered_bytes",
            "Bytes delivered",
            item_labels,
            registry=self.registry,
        )
        self.schedule_runs = prom.Counter(
            "btic_schedule_runs",
            "Schedule runs, by how they went (ok, failed, interrupted)",
            ["schedule", "status"],
            registry=self.registry,
        )
        self.last_run = prom.Gauge(
            "btic_schedule_last_run_timestamp_seconds",
            "When a schedule's last run ended",
            ["schedule"],
            registry=self.registry,
        )
        self.last_success = prom.Gauge(
            "btic_schedule_last_success_timestamp_seconds",
            "When a schedule's last run without errors ended",
            ["schedule"],
            registry=self.registry,
        )
        self.calls = prom.Histogram(
            "btic_appliance_call_duration_seconds",
            "Appliance API calls (each try), by call and outcome (ok, retry, error)",
            ["site", "call", "outcome"],
            registry=self.registry,
        )
        self.retries = prom.Counter(
            "btic_appliance_retries",
            "Appliance API calls tried again after a pause",
            ["site", "call"],
            registry=self.registry,
        )
        self.tokens = prom.Counter(
            "btic_appliance_token_grants",
            "OAuth tokens granted by the appliance (an API account holds 30)",
            ["site"],
            registry=self.registry,
        )
        self.overdue = prom.Gauge(
            "btic_schedules_overdue",
            "Schedules whose run is overdue (see /healthz)",
            registry=self.registry,
        )

    def watch_tasks(self, snapshot: Callable[[], TaskSnapshot | None]) -> None:
        """Show the celery executor's tasks, read from ``snapshot`` at each scrape:
        queued, running, retried and lost per site, the broker's queue depth, and how
        long tasks wait and run."""
        self.registry.register(_TaskCollector(snapshot))

    # -- items (a Reporter) ----------------------------------------------------------

    def delivered(
        self,
        site: str,
        destination: str,
        data_type: str,
        key: str,
        status: str,
        detail: str,
        size: int | None,
    ) -> None:
        self.items.labels(site, destination, data_type, status).inc()
        if status == "delivered" and size:
            self.bytes.labels(site, destination, data_type).inc(size)

    def note(self, message: str) -> None:
        pass

    # -- appliance calls (a CallObserver) ----------------------------------------------

    def answered(self, site: str, label: str, seconds: float, outcome: str) -> None:
        self.calls.labels(site, label, outcome).observe(seconds)

    def retried(self, site: str, label: str) -> None:
        self.retries.labels(site, label).inc()

    def token_granted(self, site: str) -> None:
        self.tokens.labels(site).inc()

    # -- schedules (a ScheduleObserver) ------------------------------------------------

    def schedules_before(self, times: Mapping[str, ScheduleTimes]) -> None:
        """The last run and last success of each schedule as the state database has
        them: a restarted daemon's gauges (and the alerts on them) have data at once."""
        for name, known in times.items():
            if known.last_run is not None:
                self.last_run.labels(name).set(known.last_run.timestamp())
            if known.last_success is not None:
                self.last_success.labels(name).set(known.last_success.timestamp())

    def schedule_ran(self, outcome: ScheduleOutcome) -> None:
        self.schedule_runs.labels(outcome.name, outcome.status).inc()
        finished = outcome.finished_at.timestamp()
        self.last_run.labels(outcome.name).set(finished)
        if outcome.status == RunStatus.OK:
            self.last_success.labels(outcome.name).set(finished)


class _TaskCollector:
    """Gauges read from the state database and the broker when scraped."""

    def __init__(self, snapshot: Callable[[], TaskSnapshot | None]):
        self.snapshot = snapshot

    def describe(self) -> list[Any]:
        return []  # nothing to read at registration

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        taken = self.snapshot()
        if taken is None:
            return
        tasks = GaugeMetricFamily(
            "btic_tasks", "Celery tasks by site and state", labels=["site", "state"]
        )
        for counts in taken.counts:
            for state in ("queued", "running", "retried", "lost"):
                tasks.add_metric([counts.site, state], getattr(counts, state))
        yield tasks
        if taken.queue_depth is not None:
            yield GaugeMetricFamily(
                "btic_task_queue_depth",
                "Tasks waiting in the broker's queue",
                value=taken.queue_depth,
            )
        latency = taken.latency
        yield GaugeMetricFamily(
            "btic_task_oldest_queued_seconds",
            "How long the longest-waiting queued task has waited",
            value=latency.oldest_queued or 0.0,
        )
        for name, help_text, mean, longest in (
            ("wait", "from enqueued to started", latency.wait_mean, latency.wait_max),
            ("run", "from started to finished", latency.run_mean, latency.run_max),
        ):
            family = GaugeMetricFamily(
                f"btic_task_{name}_seconds",
                f"Tasks started in the last 15 minutes: seconds {help_text}",
                labels=["stat"],
            )
            if mean is not None and longest is not None:
                family.add_metric(["mean"], mean)
                family.add_metric(["max"], longest)
            yield family


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every 15 s is not worth a log line


def serve(
    metrics: Metrics,
    port: int,
    *,
    host: str = "127.0.0.1",
    overdue: Callable[[], Iterable[str]],
) -> WSGIServer:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` from a background thread.

    :param overdue: the schedules overdue now (``/healthz`` fails while any are).
    :raises UsageError: when the port cannot be had.
    """
    from prometheus_client import make_wsgi_app

    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            late = sorted(overdue())
            metrics.overdue.set(len(late))
            body = json.dumps({"ok": not late, "overdue": late}).encode()
            status = "200 OK" if not late else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        metrics.overdue.set(len(list(overdue())))
        answer: Iterable[bytes] = exposition(environ, start_response)
        return answer

    try:
        server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    except OSError as exc:
        raise UsageError(
            f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose another port"
        ) from None
    threading.Thread(target=server.serve_forever, name="btic-metrics", daemon=True).start()
    return server
