"""Putting one object: whole, or in parts, always with a SHA-256 the service checks.

A body of at most one part goes up in one ``PutObject`` carrying its
``x-amz-checksum-sha256``. A larger one goes up in parts read one after the
other from the spool file (memory: part size x concurrency), each carrying its
own SHA-256; the service's composite checksum of the finished object is
compared with the one computed here. Any error aborts the upload.

An upload cut short by a crash cannot be aborted by the process that started
it, and S3 does not list an unfinished upload's metadata. So before it starts
one, btic writes a small marker object under ``<prefix>.btic-uploads/`` naming
the key, its host and process; the next run aborts the unfinished uploads of
the keys whose process is gone (or that are over a day old) and removes their
markers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

import btic
from btic.plugin import process_alive
from btic_s3.service import described, is_missing

#: Where upload markers live, under the destination's prefix.
MARKERS = ".btic-uploads/"
#: An unfinished upload older than this is abandoned, whoever started it.
STALE_AFTER = 24 * 3600


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Body:
    """What to upload: a way to open it, its size and its SHA-256 (hex)."""

    open: Callable[[], IO[bytes]]
    size: int
    sha256: str


class Uploader:
    """Uploads objects to one bucket.

    :param client: a boto3 S3 client.
    :param part_size: bytes a part; bodies up to this size go up whole.
    :param concurrency: parts of one upload in flight at once.
    """

    def __init__(self, client: Any, bucket: str, prefix: str, part_size: int, concurrency: int):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.concurrency = concurrency
        self._swept = False
        self._sweep_lock = threading.Lock()

    def put(self, key: str, body: Body, extra: dict[str, Any]) -> None:
        """Store ``body`` at ``key``; the service verifies its SHA-256.

        :param extra: PutObject / CreateMultipartUpload arguments (metadata,
            tagging, storage class, encryption, object lock).
        :raises btic.DestinationError: naming the bucket, key and cause.
        """
        self.sweep()
        where = f"s3://{self.bucket}/{key}"
        if body.size <= self.part_size:
            self._put_whole(key, body, extra, where)
        else:
            self._put_parts(key, body, extra, where)

    def _put_whole(self, key: str, body: Body, extra: dict[str, Any], where: str) -> None:
        with body.open() as source:
            data = _read(source, body.size + 1)
        if len(data) != body.size or hashlib.sha256(data).hexdigest() != body.sha256:
            raise btic.DestinationError(f"{where}: the spooled file changed since it was checked")
        checksum = b64(bytes.fromhex(body.sha256))
        try:
            answer = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
                **extra,
            )
        except Exception as exc:  # noqa: BLE001 - every service error becomes one line
            raise described(exc, where) from None
        _compare(answer.get("ChecksumSHA256"), checksum, where)

    def _put_parts(self, key: str, body: Body, extra: dict[str, Any], where: str) -> None:
        # The marker first: a crash at any later moment leaves one naming the key.
        marker = self._mark(key, where)
        try:
            started = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256", **extra
            )
        except Exception as exc:  # noqa: BLE001
            self._unmark(marker)
            raise described(exc, where) from None
        upload_id = started["UploadId"]
        try:
            parts, digests, whole = self._send_parts(key, upload_id, body, where)
            if whole != body.sha256:
                raise btic.DestinationError(
                    f"{where}: the spooled file changed since it was checked"
                )
            done = self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
            expected = b64(hashlib.sha256(b"".join(digests)).digest()) + f"-{len(digests)}"
            _compare(done.get("ChecksumSHA256"), expected, where)
        except BaseException as exc:
            self._abort(key, upload_id)
            self._unmark(marker)
            if isinstance(exc, btic.DestinationError) or not isinstance(exc, Exception):
                raise
            raise described(exc, where) from None
        self._unmark(marker)

    def _send_parts(
        self, key: str, upload_id: str, body: Body, where: str
    ) -> tuple[list[dict[str, Any]], list[bytes], str]:
        """Read parts in order and send up to ``concurrency`` at once; each part is
        hashed in the thread that sends it (hashlib lets go of the GIL), the whole
        file in this one as it is read."""
        whole = hashlib.sha256()
        slots = threading.BoundedSemaphore(self.concurrency)
        failed = threading.Event()
        futures: list[Future[dict[str, Any]]] = []

        def finished(future: Future[dict[str, Any]]) -> None:
            if future.exception() is not None:
                failed.set()
            slots.release()

        with (
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="btic-s3-part") as pool,
            body.open() as source,
        ):
            number = 0
            while True:
                slots.acquire()  # memory: at most `concurrency` parts read and unsent
                data = _read(source, self.part_size)
                if not data:
                    slots.release()
                    break
                number += 1
                future = pool.submit(self._send_part, key, upload_id, number, data, where)
                whole.update(data)
                future.add_done_callback(finished)
                futures.append(future)
                if failed.is_set():
                    break
            parts = [future.result() for future in futures]
        digests = [base64.b64decode(part["ChecksumSHA256"]) for part in parts]
        return parts, digests, whole.hexdigest()

    def _send_part(
        self, key: str, upload_id: str, number: int, data: bytes, where: str
    ) -> dict[str, Any]:
        checksum = b64(hashlib.sha256(data).digest())
        try:
            answer = self.client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
        except Exception as exc:  # noqa: BLE001
            raise described(exc, f"{where} (part {number})") from None
        _compare(answer.get("ChecksumSHA256"), checksum, f"{where} (part {number})")
        return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum}

    def _abort(self, key: str, upload_id: str) -> None:
        # On failure the marker stays, and a later run tries again.
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    # -- markers of unfinished uploads --------------------------------------------------

    def _mark(self, key: str, where: str) -> str:
        note = {
            "key": key,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
        }
        token = hashlib.sha256(json.dumps(note).encode()).hexdigest()
        marker = f"{self.prefix}{MARKERS}{token}"
        try:
            self.client.put_object(Bucket=self.bucket, Key=marker, Body=json.dumps(note).encode())
        except Exception as exc:  # noqa: BLE001
            raise described(exc, where) from None
        return marker

    def _abort_all(self, key: str) -> None:
        """Abort every unfinished upload of ``key`` (a dead process's: the leases
        keep live processes from uploading the same key)."""
        answer = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        for upload in answer.get("Uploads", ()):
            if upload["Key"] == key:
                self._abort(key, upload["UploadId"])

    def _unmark(self, marker: str) -> None:
        # A marker left behind is swept by a later run.
        with contextlib.suppress(Exception):
            self.client.delete_object(Bucket=self.bucket, Key=marker)

    def _note(self, marker: str) -> dict[str, Any] | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=marker)
            note = json.loads(answer["Body"].read())
        except Exception as exc:
            if is_missing(exc):
                return None  # finished meanwhile
            raise
        return note if isinstance(note, dict) and "key" in note else None

    def sweep(self) -> list[str]:
        """Abort the unfinished uploads of processes that are gone (once a run, before
        any upload of this process starts); return their keys."""
        # Held throughout: another thread's upload must not start while a key's
        # unfinished uploads are being aborted.
        with self._sweep_lock:
            if self._swept:
                return []
            aborted = []
            markers = f"{self.prefix}{MARKERS}"
            try:
                pages = self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=markers
                )
                for page in pages:
                    for entry in page.get("Contents", ()):
                        note = self._note(entry["Key"])
                        if note is not None and _abandoned(note):
                            self._abort_all(str(note["key"]))
                            self._unmark(entry["Key"])
                            aborted.append(str(note["key"]))
            except Exception as exc:  # noqa: BLE001 - every service error becomes one line
                raise described(exc, f"s3://{self.bucket}/{markers}") from None
            self._swept = True
            return aborted


def _read(source: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes: fewer only at the end (a read may return less)."""
    chunks = []
    left = size
    while left > 0:
        chunk = source.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _abandoned(note: dict[str, Any]) -> bool:
    if time.time() - float(note.get("started", 0)) > STALE_AFTER:
        return True
    if note.get("host") != socket.gethostname():
        return False  # another machine's upload, perhaps still running
    try:
        pid = int(note["pid"])
    except (KeyError, ValueError):
        return False
    # Not os.kill(pid, 0) here: on Windows that ends the process.
    return not process_alive(pid)


def _compare(answered: str | None, expected: str, where: str) -> None:
    """The service's checksum of what it stored against btic's; a service that
    answers none (some S3-compatible stores) was still sent btic's to verify,
    and one that leaves the part count off a composite checksum is read without it."""
    if answered is not None and answered not in (expected, expected.split("-")[0]):
        raise btic.DestinationError(
            f"{where}: the service stored SHA-256 {answered}, btic sent {expected}; "
            "not recorded as delivered"
        )


__all__ = ["MARKERS", "Body", "Uploader", "b64"]
