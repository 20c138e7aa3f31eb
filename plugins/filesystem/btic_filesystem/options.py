"""The settings of a file-system destination, as the vendor's File System plugin names them."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from btic import ConfigWarning, DataType, naming

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
    file_mode: str = Field(
        default="0640",
        description="permissions of every file written, in octal; evidence is not world-readable",
    )
    directory_mode: str = Field(
        default="0750", description="permissions of every directory btic creates, in octal"
    )
    group: str | None = Field(
        default=None,
        description="group (name or id) given every file and directory written; "
        "default: the user's own",
    )
    download_format: Literal["xml", "xml+json"] = Field(
        default="xml",
        description='"xml": session reports as received; "xml+json": also the session as JSON',
    )

    @field_validator("file_mode", "directory_mode")
    @classmethod
    def _octal_mode(cls, value: str, info: ValidationInfo) -> str:
        if not re.fullmatch(r"0?[0-7]{3}", value):
            raise ValueError(f'{value!r} is not a mode: give three octal digits, as "0640"')
        if int(value, 8) & 0o007:
            warnings.warn(
                f"{info.field_name} = {value!r} lets every user of the machine read the "
                "archive (session reports "
                'hold chats and names): give the others no rights (as "0640") and a group '
                "to those who must read it",
                ConfigWarning,
                stacklevel=2,
            )
        return value

    @property
    def file_permissions(self) -> int:
        return int(self.file_mode, 8)

    @property
    def directory_permissions(self) -> int:
        return int(self.directory_mode, 8)

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
