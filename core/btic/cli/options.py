"""Options several commands share, in a module light enough for any of them."""

from __future__ import annotations

from collections.abc import Callable

import click


def output_options(command: Callable[..., None]) -> Callable[..., None]:
    """-q, -v and --json, for the commands that move data."""
    command = click.option(
        "--json", "as_json", is_flag=True, help="Print the summary as one JSON object."
    )(command)
    command = click.option(
        "-v",
        "--verbose",
        count=True,
        help="One log line per item, and the summary even when all went well.",
    )(command)
    return click.option(
        "-q", "--quiet", is_flag=True, help="Only errors and the summary; no progress bars."
    )(command)


def verbosity_of(quiet: bool, verbose: int) -> int:
    return -1 if quiet else verbose
