"""The S3 destination: sessions, recordings and backups as objects in one bucket."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote, urlencode

import btic
from btic import DataType, naming
from btic_s3 import retention
from btic_s3.options import S3Options
from btic_s3.reading import ObjectReader
from btic_s3.service import described, error_code, is_missing, make_client
from btic_s3.uploads import MARKERS, Body, Uploader, b64

MIB = 1024 * 1024


class S3Destination:
    """Puts sessions, recordings and backups as objects in one bucket."""

    #: the plugin API this plugin is written for (btic refuses a later one it lacks)
    api_version = (1, 0)
    #: items sealed to age recipients (``encrypt``) are objects like any other
    accepts_sealed = True

    Options = S3Options

    def __init__(self) -> None:
        self._options: S3Options | None = None
        self._client: Any = None
        self._uploader: Uploader | None = None
        self._lock = threading.Lock()
        #: whether the bucket has object lock, once asked
        self._locks: bool | None = None

    @btic.hookimpl
    def on_configure(self, options: S3Options) -> None:
        # Nothing is contacted here: boto3 is imported on the first upload or check.
        self._options = options

    @property
    def options(self) -> S3Options:
        if self._options is None:
            raise btic.DestinationError("the S3 destination was not configured")
        return self._options

    def _service(self) -> tuple[Any, Uploader]:
        with self._lock:
            if self._uploader is None:
                options = self.options
                self._client = make_client(options)
                self._uploader = Uploader(
                    self._client,
                    options.bucket,
                    options.prefix,
                    options.part_size_mb * MIB,
                    options.max_concurrency,
                )
            return self._client, self._uploader

    def _location(self, key: str) -> str:
        return f"s3://{self.options.bucket}/{key}"

    def _key(self, data_type: DataType, values: dict[str, str]) -> str:
        options = self.options
        template = naming.template_for(data_type, options.key_format, options.key_formats)
        return options.prefix + naming.render(template, values)

    # -- hooks ---------------------------------------------------------------------------

    @btic.hookimpl
    def on_check(self) -> str:
        client, _ = self._service()
        options = self.options
        bucket = f"s3://{options.bucket}"
        try:
            client.head_bucket(Bucket=options.bucket)
            region = client.get_bucket_location(Bucket=options.bucket).get("LocationConstraint")
        except Exception as exc:  # noqa: BLE001 - every service error becomes one line
            if is_missing(exc):  # HEAD answers a bare 404
                raise btic.DestinationError(
                    f"{bucket}: the bucket does not exist (create it, or fix bucket)"
                ) from None
            raise self._why_refused(client, exc) from None
        region = region or "us-east-1"
        if options.region and region != options.region:
            raise btic.DestinationError(
                f"{bucket}: the bucket is in {region}, not in region {options.region}"
            )
        said = [f"{bucket} ({region}) writable"]
        if options.object_lock_mode or options.legal_hold:
            if not self._bucket_locks(client):
                raise btic.DestinationError(
                    f"{bucket}: object lock is not enabled on the bucket (it can only be "
                    "turned on when a bucket is created); remove object_lock_mode and "
                    "legal_hold, or use a bucket created with object lock"
                )
            said.append(f"object lock {options.object_lock_mode or 'legal hold'} enabled")
        probe = f"{options.prefix}{MARKERS}probe-{hashlib.sha256(bucket.encode()).hexdigest()[:8]}"
        data = b"btic probe\n"
        try:
            # Encrypted as the objects will be (a bucket policy may demand it), but
            # not locked: the probe must go again.
            client.put_object(
                Bucket=options.bucket,
                Key=probe,
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=b64(hashlib.sha256(data).digest()),
                **self._encryption_arguments(),
            )
            client.delete_object(Bucket=options.bucket, Key=probe)
        except Exception as exc:  # noqa: BLE001
            raise described(exc, self._location(probe)) from None
        return ", ".join(said)

    def _why_refused(self, client: Any, exc: Exception) -> btic.DestinationError:
        """HEAD answers a bare 403 for wrong keys and missing permissions alike; a GET
        of the bucket's location says which."""
        bucket = f"s3://{self.options.bucket}"
        if error_code(exc) != "403":
            return described(exc, bucket)
        try:
            client.get_bucket_location(Bucket=self.options.bucket)
        except Exception as detailed:  # noqa: BLE001
            return described(detailed, bucket)
        return described(exc, bucket)

    @btic.hookimpl
    def on_session_xml(
        self, session: btic.Session, xml: bytes, ctx: btic.TransferContext
    ) -> btic.Delivery | None:
        extension = naming.session_extension(ctx.sealed)
        key = self._key(ctx.data_type, naming.session_values(session, extension=extension))
        body = Body(lambda: io.BytesIO(xml), len(xml), hashlib.sha256(xml).hexdigest())
        return self._store(
            key, body, ctx, "application/octet-stream" if ctx.sealed else "application/xml"
        )

    @btic.hookimpl
    def on_recording(
        self, recording: btic.Recording, ctx: btic.TransferContext
    ) -> btic.Delivery | None:
        key = self._key(recording.data_type, naming.recording_values(recording))
        body = Body(recording.open, recording.size, recording.sha256)
        return self._store(key, body, ctx, "application/octet-stream")

    @btic.hookimpl
    def on_backup(self, backup: btic.Backup, ctx: btic.TransferContext) -> btic.Delivery | None:
        key = self._key(DataType.BACKUP, naming.backup_values(backup))
        body = Body(backup.open, backup.size, backup.sha256)
        delivery = self._store(key, body, ctx, "application/octet-stream")
        options = self.options
        keep = options.retention_count
        if not keep:
            return delivery
        client, _ = self._service()
        template = naming.template_for(DataType.BACKUP, options.key_format, options.key_formats)
        removed = retention.apply(client, options.bucket, options.prefix, template, backup, keep)
        for gone in removed:
            ctx.log.info(
                "removed an old backup (retention_count)",
                destination=ctx.destination,
                location=self._location(gone),
                kept=options.retention_count,
            )
        if delivery is None or not removed:
            return delivery
        return btic.Delivery(
            location=delivery.location,
            size=delivery.size,
            sha256=delivery.sha256,
            removed=tuple(self._location(key) for key in removed),
        )

    @btic.hookimpl
    def on_locate(self, session: btic.Session, ctx: btic.TransferContext) -> btic.Placement:
        extension = naming.session_extension(ctx.sealed)
        return btic.Placement(
            self._location(
                self._key(ctx.data_type, naming.session_values(session, extension=extension))
            )
        )

    @btic.hookimpl
    def on_verify(self, items: Iterable[btic.StoredItem]) -> Iterator[btic.VerifyFinding]:
        client, _ = self._service()
        bucket = self.options.bucket
        start = f"s3://{bucket}/"
        for item in items:
            if not item.location.startswith(start):
                yield btic.VerifyFinding(
                    "missing", item.location, f"not in bucket {bucket}", item.item_key
                )
                continue
            head = self._head(client, item.location.removeprefix(start))
            if head is None:
                yield btic.VerifyFinding("missing", item.location, "no such object", item.item_key)
                continue
            size, sha256 = head["ContentLength"], _metadata(head).get("sha256")
            if item.size is not None and size != item.size:
                detail = f"{size} bytes, {item.size} delivered"
                yield btic.VerifyFinding("changed", item.location, detail, item.item_key)
            elif item.sha256 is not None and sha256 != item.sha256:
                yield btic.VerifyFinding("changed", item.location, "sha256 differs", item.item_key)

    @btic.hookimpl
    def on_remove(self, item: btic.StoredItem) -> None:
        start = f"s3://{self.options.bucket}/"
        if not item.location.startswith(start):
            raise btic.DestinationError(
                f"{item.location}: not in bucket {self.options.bucket}; not removed",
                permanent=True,
            )
        key = item.location.removeprefix(start)
        client, _ = self._service()
        try:
            # An object lock refuses this until its retention ends: the item stays.
            client.delete_object(Bucket=self.options.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - described for the user
            if not is_missing(exc):
                raise described(exc, item.location) from None

    @btic.hookimpl
    def on_hold(self, item: btic.StoredItem, held: bool) -> bool:
        key = self._object_key(item.location)
        client, _ = self._service()
        if not self._bucket_locks(client):
            return False  # a legal hold needs object lock, which a bucket has from birth
        try:
            client.put_object_legal_hold(
                Bucket=self.options.bucket,
                Key=key,
                LegalHold={"Status": "ON" if held else "OFF"},
            )
        except Exception as exc:  # noqa: BLE001 - described for the user
            raise described(exc, item.location) from None
        return True

    def _object_key(self, location: str) -> str:
        """The key of the object at ``location`` (``s3://BUCKET/KEY``) in this bucket.

        :raises btic.DestinationError: it names another bucket.
        """
        start = f"s3://{self.options.bucket}/"
        if not location.startswith(start):
            raise btic.DestinationError(f"{location}: not in bucket {self.options.bucket}")
        return location.removeprefix(start)

    def _bucket_locks(self, client: Any) -> bool:
        """Whether the bucket has object lock (asked once: it is set when a bucket is
        created, and never turned off)."""
        if self._locks is None:
            try:
                lock = client.get_object_lock_configuration(Bucket=self.options.bucket)
                enabled = lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
            except Exception as exc:  # noqa: BLE001
                if "ObjectLockConfigurationNotFound" not in str(exc):
                    raise described(exc, f"s3://{self.options.bucket}") from None
                enabled = None
            self._locks = enabled == "Enabled"
        return self._locks

    @btic.hookimpl
    def on_list(self) -> Iterator[str]:
        client, _ = self._service()
        options = self.options
        kept_beside = (f"{options.prefix}{MARKERS}", f"{options.prefix}{btic.DIGEST_DIRECTORY}/")
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=options.bucket, Prefix=options.prefix
        )
        for page in pages:
            for entry in page.get("Contents", ()):
                if not entry["Key"].startswith(kept_beside):
                    yield self._location(entry["Key"])

    @btic.hookimpl
    def on_open(self, item: btic.StoredItem) -> io.BufferedReader:
        key = self._object_key(item.location)
        client, _ = self._service()
        try:
            answer = client.get_object(Bucket=self.options.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - described for the user
            raise described(exc, item.location) from None
        # Seekable: a range of a large recording is one ranged GET, not a read from 0.
        reader = ObjectReader(client, self.options.bucket, key, answer, item.location)
        return io.BufferedReader(reader, buffer_size=MIB)

    @btic.hookimpl
    def on_digest(self, digest: btic.Digest) -> str:
        client, _ = self._service()
        key = f"{self.options.prefix}{btic.DIGEST_DIRECTORY}/{digest.name}.json"
        for name, data in ((key + ".sig", digest.signature_file()), (key, digest.body)):
            try:
                # Only if absent: a digest is never replaced (object lock keeps it too).
                client.put_object(
                    Bucket=self.options.bucket,
                    Key=name,
                    Body=data,
                    ChecksumAlgorithm="SHA256",
                    IfNoneMatch="*",
                )
            except Exception as exc:  # noqa: BLE001 - described for the user
                if error_code(exc) == "PreconditionFailed" and self._body(client, name) == data:
                    continue  # the same digest, stored by an earlier try
                raise described(exc, self._location(name)) from None
        return self._location(key)

    @btic.hookimpl
    def on_digests(self) -> Iterator[btic.Digest]:
        client, _ = self._service()
        prefix = f"{self.options.prefix}{btic.DIGEST_DIRECTORY}/"
        try:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.options.bucket, Prefix=prefix
            )
            keys = [e["Key"] for page in pages for e in page.get("Contents", ())]
        except Exception as exc:  # noqa: BLE001 - described for the user
            raise described(exc, self._location(prefix)) from None
        present = set(keys)
        for key in sorted(k for k in keys if k.endswith(".json")):
            signature = self._body(client, key + ".sig") if key + ".sig" in present else b""
            body = self._body(client, key) or b""
            yield btic.Digest.read(key[len(prefix) : -len(".json")], body, signature or b"")

    def _body(self, client: Any, key: str) -> bytes | None:
        try:
            return bytes(client.get_object(Bucket=self.options.bucket, Key=key)["Body"].read())
        except Exception as exc:  # noqa: BLE001
            if is_missing(exc):
                return None
            raise described(exc, self._location(key)) from None

    # -- storing, with the conflict modes -----------------------------------------------

    def _store(
        self, key: str, body: Body, ctx: btic.TransferContext, content_type: str
    ) -> btic.Delivery | None:
        """Put ``body`` at ``key`` as the conflict mode says.

        Each object carries its item key, so a key another item holds is never
        taken for this one's (``Skip``), and this item's own unrecorded earlier
        object (a crash before the ledger write) is replaced rather than
        numbered when its bytes changed; identical content counts as delivered.
        """
        client, uploader = self._service()
        # First, once a run: a crashed run's unfinished uploads are aborted.
        uploader.sweep()
        item = str(ctx.item_key)
        conflict = self.options.conflict
        target = key
        existing = self._head(client, key)
        if existing is not None and conflict == "Skip":
            owner = _metadata(existing).get("item")
            if owner is None or owner == item:
                return None
            conflict = "AppendNumber"  # another item's name: numbered, never skipped
            ctx.log.warning(
                "two items map to one key; numbering this one",
                key=key,
                holder=owner,
                item=item,
            )
        if existing is not None and conflict == "AppendNumber":
            number = 0
            while existing is not None:
                meta = _metadata(existing)
                if meta.get("sha256") == body.sha256 and existing["ContentLength"] == body.size:
                    return self._delivered(target, body)
                if (
                    ctx.plain_sha256 is not None
                    and meta.get("plain-sha256") == ctx.plain_sha256
                    and meta.get("item") in (None, item)
                ):
                    # This content, sealed before (a sealed copy differs each time).
                    return btic.Delivery(
                        location=self._location(target),
                        size=int(existing["ContentLength"]),
                        sha256=meta.get("sha256"),
                    )
                if meta.get("item") == item and not ctx.force:
                    break  # this item's own unrecorded object: replaced
                number += 1
                target = _numbered(key, number)
                existing = self._head(client, target)
        uploader.put(target, body, self._arguments(ctx, body, content_type))
        return self._delivered(target, body)

    def _delivered(self, key: str, body: Body) -> btic.Delivery:
        return btic.Delivery(location=self._location(key), size=body.size, sha256=body.sha256)

    def _head(self, client: Any, key: str) -> dict[str, Any] | None:
        try:
            return dict(client.head_object(Bucket=self.options.bucket, Key=key))
        except Exception as exc:  # noqa: BLE001
            if is_missing(exc):
                return None
            raise described(exc, self._location(key)) from None

    def _arguments(
        self, ctx: btic.TransferContext, body: Body, content_type: str
    ) -> dict[str, Any]:
        """Metadata, tags, storage class, encryption and object lock of a new object."""
        key = ctx.item_key
        metadata = {
            "item": str(key),
            "site-host": ctx.site.host,
            "data-type": ctx.data_type.value,
            "lsid": key.id if ctx.data_type != DataType.BACKUP else "",
            "sha256": body.sha256,
            "size": str(body.size),
            "plain-sha256": ctx.plain_sha256 or "",
        }
        arguments: dict[str, Any] = {
            "ContentType": content_type,
            # HTTP headers carry ASCII only: values are percent-encoded.
            "Metadata": {name: quote(value, safe="") for name, value in metadata.items() if value},
            "StorageClass": self.options.storage_class,
            **self._encryption_arguments(),
            **self._lock_arguments(),
        }
        if self.options.tags:
            arguments["Tagging"] = urlencode(self.options.tags)
        return arguments

    def _encryption_arguments(self) -> dict[str, Any]:
        options = self.options
        arguments: dict[str, Any] = {}
        if options.server_side_encryption:
            arguments["ServerSideEncryption"] = options.server_side_encryption
        if options.sse_kms_key_id:
            arguments["SSEKMSKeyId"] = options.sse_kms_key_id
        return arguments

    def _lock_arguments(self) -> dict[str, Any]:
        options = self.options
        arguments: dict[str, Any] = {}
        if options.object_lock_mode and options.object_lock_retain_days:
            arguments["ObjectLockMode"] = options.object_lock_mode
            arguments["ObjectLockRetainUntilDate"] = datetime.now(timezone.utc) + timedelta(
                days=options.object_lock_retain_days
            )
        if options.legal_hold:
            arguments["ObjectLockLegalHoldStatus"] = "ON"
        return arguments


def _metadata(head: dict[str, Any]) -> dict[str, str]:
    return {name: unquote(value) for name, value in (head.get("Metadata") or {}).items()}


def _numbered(key: str, number: int) -> str:
    """``a/b.flv`` -> ``a/b.1.flv``: the file-system plugin's AppendNumber rule."""
    folder, _, name = key.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    numbered = f"{stem}.{number}.{extension}" if dot and stem else f"{name}.{number}"
    return f"{folder}/{numbered}" if folder else numbered


__all__ = ["S3Destination"]
