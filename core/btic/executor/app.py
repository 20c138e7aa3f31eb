"""The Celery application: the broker, the queue, and the delivery guarantees.

Both sides build it from ``[executor]``: the scheduler to send tasks, each
``btic worker`` to receive them. The settings are the ones at-least-once
delivery needs:

* ``task_acks_late``: a task is acknowledged when it ends, not when it is
  received, so one whose worker dies is delivered again;
* ``task_reject_on_worker_lost``: the same when a pool process dies;
* ``worker_prefetch_multiplier = 1``: a worker holds no more tasks than it runs,
  so a busy worker does not sit on tasks an idle one could run;
* the broker's visibility timeout (``[executor] visibility_timeout``): a task
  not acknowledged in that time goes to another worker. It must be longer than
  the longest transfer; a task delivered twice meanwhile is harmless (leases
  and ledger), just idle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from btic.config import ExecutorConfig
from btic.errors import UsageError

if TYPE_CHECKING:
    from celery import Celery

#: The one task btic defines.
TASK_NAME = "btic.transfer"


def celery_app(settings: ExecutorConfig) -> Celery:
    """A Celery application for ``settings``.

    :raises UsageError: when Celery is not installed or no broker is configured.
    """
    try:
        from celery import Celery
    except ImportError:
        raise UsageError(
            "the celery executor needs Celery and its Redis client: pip install 'btic[celery]'"
        ) from None
    if settings.broker_url is None:
        raise UsageError("executor.broker_url is not set; the celery executor needs a broker")
    timeout = settings.visibility_timeout.total_seconds()
    app = Celery(
        "btic",
        broker=settings.broker_url.get_secret_value(),
        backend=settings.result_backend.get_secret_value() if settings.result_backend else None,
        set_as_current=False,
    )
    app.conf.update(
        task_default_queue=settings.queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=settings.result_backend is None,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": timeout,
            # Redis puts unacknowledged tasks back on a sweep; sweep often enough
            # that a dead worker's task waits about the timeout, not far longer.
            "unacked_restore_interval": max(1, min(10, int(timeout // 10))),
            "unacked_restore_throttle": 1 if timeout < 600 else 10,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a broker restart is waited out
        # A lost broker connection leaves running tasks running: what they deliver
        # is durable, and a task delivered again because its ack was lost does
        # nothing twice.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app
