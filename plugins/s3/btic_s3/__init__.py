"""btic destination plugin: Amazon S3 or any S3-compatible object store.

``boto3`` is imported only when a destination first talks to its bucket, so
listing plugins or checking a configuration stays fast.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

import btic
from btic.secrets import Secret
from btic.types import DataType

__version__ = "0.1.0"

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
    profile: str | None = Field(
        default=None, description="a profile of the AWS shared config files"
    )
    access_key_id: Secret | None = None
    secret_access_key: Secret | None = None
    session_token: Secret | None = None
    key_format: str | None = Field(
        default=None, description="%TOKEN% template; default: one per type"
    )
    key_formats: dict[DataType, str] = Field(default_factory=dict)
    storage_class: StorageClass = "STANDARD"
    server_side_encryption: Literal["AES256", "aws:kms", "aws:kms:dsse"] | None = None
    sse_kms_key_id: str | None = None
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = None
    object_lock_retain_days: int | None = Field(default=None, ge=1)
    retention_count: int | None = Field(
        default=None, ge=1, description="newest backups kept per site"
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", value):
            raise ValueError(
                "must be an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-'"
            )
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> S3Options:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together")
        if (self.object_lock_mode is None) != (self.object_lock_retain_days is None):
            raise ValueError("object_lock_mode and object_lock_retain_days go together")
        if self.sse_kms_key_id and self.server_side_encryption not in ("aws:kms", "aws:kms:dsse"):
            raise ValueError('sse_kms_key_id needs server_side_encryption = "aws:kms"')
        return self


class S3Destination:
    """Puts sessions, recordings and backups as objects in one bucket."""

    Options = S3Options

    @btic.hookimpl
    def on_session_xml(
        self, session: btic.Session, xml: bytes, ctx: btic.TransferContext
    ) -> btic.Delivery | None:
        raise btic.DestinationError(f"{ctx.destination}: btic-s3 {__version__} cannot upload yet")

    @btic.hookimpl
    def on_recording(
        self, recording: btic.Recording, ctx: btic.TransferContext
    ) -> btic.Delivery | None:
        raise btic.DestinationError(f"{ctx.destination}: btic-s3 {__version__} cannot upload yet")

    @btic.hookimpl
    def on_backup(self, backup: btic.Backup, ctx: btic.TransferContext) -> btic.Delivery | None:
        raise btic.DestinationError(f"{ctx.destination}: btic-s3 {__version__} cannot upload yet")
