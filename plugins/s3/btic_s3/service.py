"""Reaching the bucket: the boto3 client, and the service's errors in a user's words."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import btic
from btic_s3.options import S3Options

#: Errors the service answers for the bucket or the credentials, whatever the key.
_ADVICE = {
    "NoSuchBucket": "the bucket does not exist (create it, or fix bucket)",
    "404": "not found (for a bucket: it does not exist; create it, or fix bucket)",
    "403": "access denied: the credentials lack a permission (docs/s3.md lists them)",
    "AccessDenied": "access denied: the credentials lack a permission (docs/s3.md lists them)",
    "AllAccessDisabled": "access to the bucket is disabled",
    "InvalidAccessKeyId": "the access key id is not known to the service (access_key_id)",
    "SignatureDoesNotMatch": "the secret access key is wrong (secret_access_key)",
    "ExpiredToken": "the credentials have expired (renew them, or the session token)",
    "TokenRefreshRequired": "the credentials have expired (renew them, or the session token)",
    "PermanentRedirect": "the bucket is in another region (set region)",
    "AuthorizationHeaderMalformed": "the bucket is in another region (set region)",
    "IllegalLocationConstraintException": "the bucket is in another region (set region)",
    "BadDigest": "the service computed another SHA-256 than btic sent: the bytes were damaged "
    "on the way; retried on the next run",
    "XAmzContentSHA256Mismatch": "the service computed another SHA-256 than btic sent",
    "InvalidBucketState": "the bucket's state forbids this (object lock or versioning)",
}


def make_client(options: S3Options) -> Any:
    """A boto3 S3 client for the destination's bucket (boto3 is imported here, on
    first use, so listing plugins and offline checks stay fast)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise btic.DestinationError(
            f"s3://{options.bucket}: boto3 is not installed ({exc}); pip install btic-s3"
        ) from None
    session = boto3.session.Session(
        profile_name=options.profile,
        aws_access_key_id=_value(options.access_key_id),
        aws_secret_access_key=_value(options.secret_access_key),
        aws_session_token=_value(options.session_token),
    )
    config = Config(
        region_name=options.region,
        # Throttling (SlowDown, 503) and dropped connections: retried with backoff.
        retries={"mode": "standard", "max_attempts": 8},
        s3={"addressing_style": options.addressing_style},
        # btic sends its own SHA-256 with every body; no second checksum.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=20,
        read_timeout=120,
    )
    return session.client("s3", endpoint_url=options.endpoint_url, config=config)


def _value(secret: btic.Secret | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _error(exc: BaseException) -> dict[str, Any]:
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    return error if isinstance(error, dict) else {}


def error_code(exc: BaseException) -> str:
    """The service's error code (``NoSuchKey``, ``404``...), or ''."""
    return str(_error(exc).get("Code", ""))


def is_missing(exc: BaseException) -> bool:
    return error_code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchUpload")


def described(exc: BaseException, where: str) -> btic.DestinationError:
    """A ``DestinationError`` naming ``where`` (bucket and key) and the cause."""
    from botocore import exceptions as boto

    code = error_code(exc)
    if code:
        message = str(_error(exc).get("Message", "")) or code
        cause = _ADVICE.get(code, f"{code}: {message}")
    elif isinstance(exc, boto.NoCredentialsError):
        cause = (
            "no AWS credentials found (set access_key_id and secret_access_key, a profile, "
            "or the environment's AWS_* variables)"
        )
    elif isinstance(exc, boto.EndpointConnectionError | boto.ConnectionError):
        # The service, not the object's URL: one outage reads the same for every item.
        url = urlsplit(str(getattr(exc, "kwargs", {}).get("endpoint_url", "")))
        service = f"{url.scheme}://{url.netloc}" if url.netloc else "the service"
        cause = f"cannot reach the service at {service} (network, or endpoint_url)"
    else:
        cause = f"{type(exc).__name__}: {exc}"
    return btic.DestinationError(f"{where}: {cause}")


__all__ = ["described", "error_code", "is_missing", "make_client"]
