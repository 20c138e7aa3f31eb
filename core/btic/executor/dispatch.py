"""The scheduler's side of the celery executor: a due schedule becomes tasks."""

from __future__ import annotations

import uuid
from datetime import datetime

from btic.config import Config
from btic.errors import BrokerError
from btic.executor.app import TASK_NAME, celery_app
from btic.executor.spec import TransferTask
from btic.state import StateStore


class Dispatcher:
    """Hands each transfer of a schedule run to the broker as one task.

    :param config: the configuration whose ``[executor]`` names the broker.
    """

    def __init__(self, config: Config, state: StateStore):
        self.settings = config.executor
        self.state = state
        self.app = celery_app(config.executor)

    def enqueue(self, config: Config, schedule: str, slot: datetime) -> list[TransferTask]:
        """Enqueue one task per transfer of ``schedule`` for ``slot``; each is
        recorded in ``btic_tasks`` before it is sent, so none runs unrecorded.

        :raises BrokerError: when the broker cannot be reached (the tasks sent
            before stay; the slot is owed, and the next tick enqueues it again).
        """
        from kombu.exceptions import OperationalError

        sent = []
        for transfer in config.schedules[schedule].transfers:
            task = TransferTask.of(str(uuid.uuid4()), schedule, slot, transfer)
            self.state.task_enqueued(
                task.task_id, schedule=schedule, slot=slot, site=task.site, transfer=task.label
            )
            try:
                self.app.send_task(
                    TASK_NAME,
                    kwargs={"task": task.model_dump(mode="json")},
                    task_id=task.task_id,
                    queue=self.settings.queue,
                    retry=True,
                    retry_policy={"max_retries": 3, "interval_start": 1, "interval_step": 2},
                )
            except (OperationalError, OSError) as exc:
                detail = f"the broker did not take the task: {type(exc).__name__}: {exc}"
                self.state.task_finished(task.task_id, "error", detail)
                raise BrokerError(
                    f"schedule {schedule}: {detail}; check executor.broker_url and that the "
                    "broker runs"
                ) from None
            sent.append(task)
        return sent

    def close(self) -> None:
        self.app.close()
