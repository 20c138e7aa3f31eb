"""The settings of an S3 destination."""

from __future__ import annotations

import re
import warnings
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from btic import ConfigWarning, DataType, Secret, naming

RECEIVES = frozenset(DataType)

StorageClass = Literal[
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
    "REDUCED_REDUNDANCY",
]

#: S3's smallest part (but the last); and its most parts an upload may have.
MIN_PART_MB = 5
MAX_PARTS = 10_000


class S3Options(BaseModel):
    """``[destinations.NAME]`` with ``plugin = "s3"``.

    Credentials are optional: without them boto3's usual chain applies
    (environment, ``profile``, instance role). When given, use ``env:`` or
    ``file:`` references rather than literal keys.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str
    prefix: str = Field(default="", description="key prefix for every object, e.g. beyondtrust/")
    region: str | None = None
    endpoint_url: str | None = Field(
        default=None, description="for S3-compatible stores (MinIO, Ceph...)"
    )
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", description="path-style URLs for S3-compatible stores that need them"
    )
    profile: str | None = Field(
        default=None, description="a profile of the AWS shared config files"
    )
    access_key_id: Secret | None = None
    secret_access_key: Secret | None = None
    session_token: Secret | None = None
    conflict: Literal["AppendNumber", "Overwrite", "Skip"] = Field(
        default="AppendNumber", description="what to do when the key already exists"
    )
    # Before key_format: its check needs to know which types override it.
    key_formats: dict[DataType, str] = Field(default_factory=dict)
    key_format: str | None = Field(
        default=None, description="%TOKEN% template; '/' makes prefixes; default: one per type"
    )
    storage_class: StorageClass = "STANDARD"
    server_side_encryption: Literal["AES256", "aws:kms", "aws:kms:dsse"] | None = None
    sse_kms_key_id: str | None = None
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = None
    object_lock_retain_days: int | None = Field(default=None, ge=1)
    legal_hold: bool = Field(default=False, description="place a legal hold on every object")
    tags: dict[str, str] = Field(default_factory=dict, description="tags on every object")
    retention_count: int | None = Field(
        default=None, ge=1, description="newest backups kept per site"
    )
    part_size_mb: int = Field(
        default=16, ge=MIN_PART_MB, le=5 * 1024, description="multipart part size (MiB)"
    )
    max_concurrency: int = Field(
        default=4, ge=1, le=64, description="parts of one upload sent at once"
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", value):
            raise ValueError(
                "must be an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-'"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must not start with '/' or hold a '..' segment")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 10:
            raise ValueError("S3 allows at most 10 tags an object")
        for key, text in value.items():
            if not 1 <= len(key) <= 128 or len(text) > 256:
                raise ValueError(f"{key!r}: tag keys are 1-128 characters, values up to 256")
        return value

    @field_validator("key_formats")
    @classmethod
    def _per_type_templates(
        cls, value: dict[DataType, str], info: ValidationInfo
    ) -> dict[DataType, str]:
        conflict = info.data.get("conflict", "AppendNumber")
        naming.validate_per_type_templates(value, conflict, RECEIVES)
        return value

    @field_validator("key_format")
    @classmethod
    def _general_template(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            per_type = info.data.get("key_formats") or {}
            conflict = info.data.get("conflict", "AppendNumber")
            naming.validate_general_template(value, per_type, conflict, RECEIVES)
        return value

    @model_validator(mode="after")
    def _together(self) -> S3Options:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together")
        if (self.object_lock_mode is None) != (self.object_lock_retain_days is None):
            raise ValueError("object_lock_mode and object_lock_retain_days go together")
        if self.sse_kms_key_id and self.server_side_encryption not in ("aws:kms", "aws:kms:dsse"):
            raise ValueError('sse_kms_key_id needs server_side_encryption = "aws:kms"')
        if self.retention_count is not None and (self.object_lock_mode or self.legal_hold):
            raise ValueError(
                "retention_count deletes old backups, which object lock (object_lock_mode, "
                "legal_hold) forbids; keep them with a bucket lifecycle rule instead"
            )
        return self

    @model_validator(mode="after")
    def _lock_against_retention(self, info: ValidationInfo) -> S3Options:
        """Said once, when the configuration loads: retention cannot delete an object
        before its lock runs out (it tries again each run until then)."""
        rules: dict[DataType, timedelta] = (info.context or {}).get("retention") or {}
        if self.legal_hold and rules:
            warnings.warn(
                "legal_hold = true puts every object under a legal hold, so the retention "
                "rules delete nothing until the hold is lifted object by object",
                ConfigWarning,
                stacklevel=2,
            )
        if not self.object_lock_retain_days:
            return self
        locked = timedelta(days=self.object_lock_retain_days)
        shorter = sorted(dt.value for dt, period in rules.items() if period < locked)
        if shorter:
            warnings.warn(
                f"object_lock_retain_days = {self.object_lock_retain_days} outlasts the "
                f"retention rule of {', '.join(shorter)}: those items are deleted only once "
                "their lock runs out (each run tries again), not when the rule says",
                ConfigWarning,
                stacklevel=2,
            )
        return self
