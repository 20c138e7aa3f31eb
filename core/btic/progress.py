"""Progress of a run: bars on a terminal, one log line per item otherwise,
and the summary table at the end."""

from __future__ import annotations

import threading
from typing import Any, Literal

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from btic.transfer.summary import Summary

#: The summary's columns; README's "The summary" defines each.
COLUMNS = (
    "destination",
    "type",
    "delivered",
    "skipped",
    "expired",
    "failed",
    "already",
    "removed",
    "bytes",
)


class LogReporter:
    """One log line per delivered, skipped, failed or expired item."""

    def __init__(self, log: Any):
        self.log = log

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
        method = self.log.warning if status == "failed" else self.log.info
        method(
            str(status),
            site=site,
            destination=destination,
            data_type=data_type,
            item=key,
            detail=detail,
            size=size,
        )

    def note(self, message: str) -> None:
        self.log.info(message)


class BarReporter:
    """A bar per destination: items and bytes."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[items]} items"),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> BarReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

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
        with self._lock:
            task = self._tasks.get(destination)
            if task is None:
                task = self.progress.add_task(destination, total=None, items=0)
                self._tasks[destination] = task
            items = self.progress.tasks[task].fields["items"] + 1
            self.progress.update(task, advance=size or 0, items=items)
        if status == "failed":
            self.progress.console.print(
                f"[red]failed[/red] {destination} {data_type} {key}: {detail}"
            )

    def note(self, message: str) -> None:
        self.progress.console.print(message)


def summary_table(summary: Summary) -> Table:
    table = Table(title="transfer summary")
    for column in COLUMNS:
        justify: Literal["left", "right"] = "left" if column in ("destination", "type") else "right"
        table.add_column(column, justify=justify, no_wrap=True)
    for row in _rows(summary, thousands=True):
        table.add_row(*row)
    return table


def print_summary(console: Console, summary: Summary) -> None:
    """The summary as a table where the terminal is wide enough for it whole, else
    one line per destination and data type: a figure is never cut to fit."""
    if not summary.tallies:
        return  # nothing was listed (every site failed): the errors say why
    table = summary_table(summary)
    # Measured without the terminal's limit: rich would otherwise cut cells to fit it.
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    if natural <= console.width:
        console.print(table)
        return
    for destination, data_type, *figures in _rows(summary, thousands=True):
        counts = ", ".join(
            f"{int(figure):,} {name}"
            for name, figure in zip(COLUMNS[2:-1], figures[:-1], strict=True)
            if figure != "0"
        )
        # Wrapped between words where the line is longer still: a figure is one word.
        console.print(
            f"{destination} {data_type}: {counts or 'nothing'}; {figures[-1]} bytes",
            highlight=False,
        )


def summary_text(summary: Summary) -> str:
    """The summary as plain columns; empty when nothing was listed."""
    if not summary.tallies:
        return ""
    rows = [COLUMNS, *_rows(summary, thousands=False)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def _rows(summary: Summary, *, thousands: bool) -> list[tuple[str, ...]]:
    """One row of cells per (destination, data type), in COLUMNS' order."""
    return [
        (
            destination,
            data_type,
            str(tally.delivered),
            str(tally.skipped),
            str(tally.expired),
            str(tally.failed),
            str(tally.already),
            str(tally.removed),
            f"{tally.bytes:,}" if thousands else str(tally.bytes),
        )
        for (destination, data_type), tally in sorted(summary.tallies.items())
    ]
