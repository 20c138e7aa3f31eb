"""An object read as a seekable file: a viewer's range request becomes a ranged GET."""

from __future__ import annotations

import io
from typing import Any

import btic
from btic_s3.service import described


class ObjectReader(io.RawIOBase):
    """``bucket/key`` read in chunks; a seek drops the open answer, and the next read
    asks for the object from there (``Range: bytes=N-``), so a reader that skips to
    the middle of a 2 GB recording reads nothing before it.

    :param first: the answer of the first GET (from the start), already made, so that
        a missing object is an error at open time.
    :param location: how errors name the object.
    """

    def __init__(self, client: Any, bucket: str, key: str, first: Any, location: str):
        super().__init__()
        self._client, self._bucket, self._key, self._location = client, bucket, key, location
        self._body: Any = first["Body"]
        self._size: int = int(first["ContentLength"])
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = max(0, base + offset)
        if position != self._position:
            self._drop()
            self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size:
            return 0
        if self._body is None:
            try:
                answer = self._client.get_object(
                    Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-"
                )
            except Exception as exc:  # noqa: BLE001 - described for the user
                raise described(exc, self._location) from None
            self._body = answer["Body"]
        data = self._body.read(len(buffer))
        if not data:
            raise btic.DestinationError(
                f"{self._location}: the object ended at byte {self._position} of {self._size}"
            )
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        self._drop()
        super().close()

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
