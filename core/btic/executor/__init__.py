"""Where schedules' transfers run.

``[executor] kind = "local"`` (the default): in the ``btic run`` process, by
:class:`btic.scheduler.Scheduler` itself. ``kind = "celery"``: the scheduler
(one active ``btic run``, by the schedule leases) hands each due (site,
transfer) to Celery as a task and ``btic worker`` processes run them through
the same :class:`~btic.runs.CommandRun` as ``btic sync``:

* :mod:`btic.executor.spec` — the task's message: what to transfer, as JSON;
* :mod:`btic.executor.app` — the Celery application both sides configure;
* :mod:`btic.executor.dispatch` — the scheduler's side: enqueue a schedule;
* :mod:`btic.executor.worker` — the worker's side: run one task.

Celery delivers a task at least once (``acks_late``: a task whose worker died
is delivered again). The effect is exactly once because of what a transfer
already does: the per-(site, destination, data type) leases keep two copies of
a task off the same items, and the ledger makes a repeated one deliver nothing.
"""
