"""btic destination plugin: a local directory or a network share (UNC path).

Settings follow the vendor's File System plugin: destination directory, file
name format, file name conflict handling, retention count and download format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

import btic
from btic.types import DataType

__version__ = "0.1.0"


class FileSystemOptions(BaseModel):
    """``[destinations.NAME]`` with ``plugin = "filesystem"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: Path = Field(description="destination directory; created when missing; UNC paths on Windows")
    file_name_format: str | None = Field(
        default=None,
        description="%TOKEN% template for every data type; default: one per type (see docs)",
    )
    file_name_formats: dict[DataType, str] = Field(
        default_factory=dict, description="per-data-type templates overriding file_name_format"
    )
    conflict: Literal["AppendNumber", "Overwrite", "Skip"] = Field(
        default="AppendNumber", description="what to do when the file name already exists"
    )
    retention_count: int | None = Field(
        default=None, ge=1, description="newest backups kept per site; empty keeps all"
    )
    download_format: Literal["xml", "xml+json"] = Field(
        default="xml",
        description='"xml": session reports as received; "xml+json": also the parsed session as JSON',
    )


class FileSystemDestination:
    """Writes sessions, recordings and backups as files under one directory."""

    Options = FileSystemOptions

    @btic.hookimpl
    def on_session_xml(self, session, xml, ctx):
        raise btic.DestinationError(f"{ctx.destination}: btic-filesystem {__version__} cannot write files yet")

    @btic.hookimpl
    def on_recording(self, recording, ctx):
        raise btic.DestinationError(f"{ctx.destination}: btic-filesystem {__version__} cannot write files yet")

    @btic.hookimpl
    def on_backup(self, backup, ctx):
        raise btic.DestinationError(f"{ctx.destination}: btic-filesystem {__version__} cannot write files yet")
