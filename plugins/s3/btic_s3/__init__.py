"""btic destination plugin: Amazon S3 or any S3-compatible object store.

Everything the file-system plugin stores — session reports, every recording
kind, backups — as objects, each sent with a SHA-256 the service verifies,
large ones in parts with bounded memory, optionally under object lock.

* :mod:`btic_s3.options` — the settings.
* :mod:`btic_s3.service` — the boto3 client and the service's errors in a user's words.
* :mod:`btic_s3.uploads` — one object up, whole or in parts; unfinished uploads swept.
* :mod:`btic_s3.destination` — the hooks, keys and conflict modes.
* :mod:`btic_s3.retention` — the newest backups of a site kept.

``boto3`` is imported only when a destination first talks to its bucket, so
listing plugins or checking a configuration stays fast.
"""

from __future__ import annotations

from btic_s3.destination import S3Destination
from btic_s3.options import S3Options

__version__ = "1.0.0"

__all__ = ["S3Destination", "S3Options", "__version__"]
