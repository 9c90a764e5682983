"""botocore failures -> nanosession errors, with one clear line and never a credential."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from loguru import logger

from nanosession.errors import ConfigurationError, NanosessionError, StorageError

PRECONDITION_FAILED = "PreconditionFailed"
CONDITIONAL_CONFLICT = "ConditionalRequestConflict"
NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
DENIED = frozenset({"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                    "ExpiredToken", "InvalidToken", "AllAccessDisabled"})


def code_of(exc: ClientError) -> str:
    """The S3 error code (``"PreconditionFailed"``, ``"NoSuchKey"``, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def status_of(exc: ClientError) -> int:
    """The HTTP status of a failed request (0 when unknown)."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_precondition_failed(exc: ClientError) -> bool:
    return code_of(exc) == PRECONDITION_FAILED or status_of(exc) == 412


def is_conditional_conflict(exc: ClientError) -> bool:
    return code_of(exc) == CONDITIONAL_CONFLICT or status_of(exc) == 409


def is_not_found(exc: ClientError) -> bool:
    return code_of(exc) in NOT_FOUND


def translate(exc: Exception, op: str, where: str, attempts: int | None = None) -> Exception:
    """The nanosession error for a botocore failure of ``op`` on ``where`` (an s3:// URL)."""
    if isinstance(exc, NanosessionError):
        return exc
    if isinstance(exc, ClientError):
        code = code_of(exc)
        if code == "NoSuchBucket":
            bucket = exc.response.get("Error", {}).get("BucketName") or where
            return ConfigurationError(f"S3 bucket {bucket!r} does not exist ({op} {where})")
        if code in DENIED:
            return StorageError(
                f"S3 refused {op} of {where}: {code} (check the credentials and the bucket "
                "policy)"
            )
        return StorageError(f"S3 {op} of {where} failed: {code or 'error'} "
                            f"(HTTP {status_of(exc)})")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ConfigurationError(
            "no usable AWS credentials: set them in the environment, a profile "
            "(profile=...), or pass a configured client"
        )
    if isinstance(exc, (ConnectionError, HTTPClientError)):
        tries = f" after {attempts} attempt(s)" if attempts else ""
        return StorageError(f"cannot reach the S3 endpoint for {op} of {where}{tries}: {exc}")
    if isinstance(exc, BotoCoreError):
        return StorageError(f"S3 {op} of {where} failed: {type(exc).__name__}: {exc}")
    return exc


@contextmanager
def s3_errors(op: str, where: str, attempts: int | None = None) -> Iterator[None]:
    """Re-raise botocore failures inside the block as nanosession errors."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc, op, where, attempts)
        logger.debug("{}", error)
        raise error from exc


def response_etag(response: dict[str, Any]) -> str:
    """A response's ETag as a version token: the quotes S3 puts around it removed."""
    return str(response.get("ETag", "")).strip('"')
