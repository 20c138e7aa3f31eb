"""The scheduler's side of the celery executor: a due schedule becomes tasks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from btic.config import Config
from btic.errors import BrokerError
from btic.executor.app import TASK_NAME, celery_app
from btic.executor.spec import TransferTask
from btic.state import StateStore, TaskCounts
from btic.state.tasks import TaskLatency
from btic.statuses import RunStatus


@dataclass(frozen=True)
class TaskSnapshot:
    """The tasks as the metrics show them: per site, their latency, the broker's queue.

    :ivar queue_depth: messages in the broker's queue; None when it cannot be asked.
    """

    counts: list[TaskCounts]
    latency: TaskLatency
    queue_depth: int | None


class Dispatcher:
    """Hands each transfer of a schedule run to the broker as one task.

    :param config: the configuration whose ``[executor]`` names the broker.
    :raises ConfigError: when it cannot serve a distributed executor.
    """

    def __init__(self, config: Config, state: StateStore):
        config.require_distributed()
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
                self.state.task_finished(task.task_id, RunStatus.ERROR, detail)
                raise BrokerError(
                    f"schedule {schedule}: {detail}; check executor.broker_url and that the "
                    "broker runs"
                ) from None
            sent.append(task)
        return sent

    def queue_depth(self) -> int:
        """Tasks waiting in the broker's queue (all sites; ``btic_tasks`` has them
        per site)."""
        from kombu.exceptions import ChannelError

        with self.app.connection_for_read() as connection, connection.channel() as channel:
            try:
                declared = channel.queue_declare(queue=self.settings.queue, passive=True)
            except ChannelError:
                return 0  # Redis drops an empty queue's key: nothing waits
            return int(declared.message_count)

    def snapshot(self) -> TaskSnapshot:
        """What the metrics show of the tasks, now."""
        from kombu.exceptions import OperationalError

        try:
            depth: int | None = self.queue_depth()
        except (OperationalError, OSError):
            depth = None
        return TaskSnapshot(self.state.task_counts(), self.state.task_latency(), depth)

    def close(self) -> None:
        self.app.close()
