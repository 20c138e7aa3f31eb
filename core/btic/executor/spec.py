"""A transfer task's message: what one worker is asked to do, as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from btic.config import TransferConfig
from btic.transfer import TransferRequest
from btic.types import DataType


class TransferTask(BaseModel):
    """One (site, transfer) of one schedule run, as the broker carries it.

    Names, never secrets: the worker reads the site's credentials and the
    destinations' settings from its own configuration.

    :ivar task_id: the task, as ``btic_tasks`` and Celery name it.
    :ivar slot: the schedule slot it was enqueued for.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str
    schedule: str
    slot: datetime
    site: str
    destinations: tuple[str, ...] = Field(min_length=1)
    data: tuple[DataType, ...] = Field(min_length=1)
    command_shell_format: Literal["flv", "txt"] = "flv"

    @classmethod
    def of(
        cls, task_id: str, schedule: str, slot: datetime, transfer: TransferConfig
    ) -> TransferTask:
        return cls(
            task_id=task_id,
            schedule=schedule,
            slot=slot,
            site=transfer.site,
            destinations=tuple(transfer.destinations),
            data=tuple(transfer.data),
            command_shell_format=transfer.command_shell_format,
        )

    @property
    def label(self) -> str:
        """``site -> destinations: data types``, for status and logs."""
        return (
            f"{self.site} -> {', '.join(self.destinations)}: "
            f"{', '.join(d.value for d in self.data)}"
        )

    def request(self) -> TransferRequest:
        """The incremental transfer it asks for, as ``btic sync`` runs it."""
        return TransferRequest(
            site=self.site,
            destinations=self.destinations,
            data_types=self.data,
            incremental=True,
            command_shell_format=self.command_shell_format,
        )
