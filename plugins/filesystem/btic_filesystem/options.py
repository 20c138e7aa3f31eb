"""The settings of a file-system destination, as the vendor's File System plugin names them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from btic import naming
from btic.types import DataType

RECEIVES = frozenset(DataType)


class FileSystemOptions(BaseModel):
    """``[destinations.NAME]`` with ``plugin = "filesystem"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: Path = Field(
        description="destination directory; created when missing; UNC paths on Windows"
    )
    conflict: Literal["AppendNumber", "Overwrite", "Skip"] = Field(
        default="AppendNumber", description="what to do when the file name already exists"
    )
    # Before file_name_format: its check needs to know which types override it.
    file_name_formats: dict[DataType, str] = Field(
        default_factory=dict, description="per-data-type templates overriding file_name_format"
    )
    file_name_format: str | None = Field(
        default=None,
        description="%TOKEN% template for every data type; default: one per type (see docs)",
    )
    retention_count: int | None = Field(
        default=None, ge=1, description="newest backups kept per site; empty keeps all"
    )
    download_format: Literal["xml", "xml+json"] = Field(
        default="xml",
        description='"xml": session reports as received; "xml+json": also the session as JSON',
    )

    @field_validator("file_name_formats")
    @classmethod
    def _per_type_templates(
        cls, value: dict[DataType, str], info: ValidationInfo
    ) -> dict[DataType, str]:
        conflict = info.data.get("conflict", "AppendNumber")
        naming.validate_per_type_templates(value, conflict, RECEIVES)
        return value

    @field_validator("file_name_format")
    @classmethod
    def _general_template(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            per_type = info.data.get("file_name_formats") or {}
            conflict = info.data.get("conflict", "AppendNumber")
            naming.validate_general_template(value, per_type, conflict, RECEIVES)
        return value
