"""The S3 backend: sessions as JSONL objects in ``s3://bucket/prefix``, on boto3.

Registered through the ``nanosession`` entry-point group like any third-party plugin. It
registers without boto3 installed; opening a store then says what to install
(``pip install 'nanosession[s3]'``). See ``docs/s3.md``.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from nanosession import Capabilities, hookimpl
from nanosession.errors import BackendUnavailableError

logger.disable(__name__)

INSTALL = "pip install 'nanosession[s3]'"


def open_s3(url: str, **options: Any) -> object:
    """Factory for ``s3://bucket/prefix``; options are documented in ``docs/s3.md``."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        raise BackendUnavailableError(
            f"the s3 backend needs boto3, which is not installed; install it with: {INSTALL}"
        ) from None
    from nanosession_s3.backend import S3Backend

    return S3Backend.from_url(url, **options)


@hookimpl
def nanosession_register_backends(register: Any) -> None:
    register(
        "s3",
        open_s3,
        description="JSONL objects in an S3 bucket (AWS, MinIO, R2, Ceph, ...) via boto3",
        capabilities=Capabilities(
            compare_and_swap=True, exclusive_create=True, atomic_write=True, append=False,
            ranged_reads=True, durable=True,
            notes="compare-and-swap where the server enforces If-Match/If-None-Match (probed)",
        ),
    )
