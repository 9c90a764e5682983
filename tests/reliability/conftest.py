"""Fixtures for the reliability tests: S3 store targets on moto's real HTTP server."""

from __future__ import annotations

import pytest

from nanosession import open_store
from nanosession.errors import BackendUnavailableError, UnknownSchemeError

Target = tuple[str, dict[str, str]]


def _available(url: str, options: dict[str, str]) -> Target:
    try:
        open_store(url, **options).close()
    except (UnknownSchemeError, BackendUnavailableError) as exc:
        pytest.skip(f"{options['backend']} backend not available: {exc}")
    return url, options


@pytest.fixture
def s3_target(moto_endpoint: str, s3_bucket: str) -> Target:
    """``(url, options)`` of an empty store of the S3 plugin (skips until it is installed)."""
    options = {"backend": "s3", "endpoint_url": moto_endpoint}
    return _available(f"s3://{s3_bucket}/rel", options)


@pytest.fixture
def s3fs_target(moto_endpoint: str, s3_bucket: str) -> Target:
    """``(url, options)`` of an empty store of the fsspec plugin over s3fs."""
    options = {"backend": "fsspec", "endpoint_url": moto_endpoint}
    return _available(f"s3://{s3_bucket}/rel", options)
