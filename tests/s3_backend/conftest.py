"""S3 test fixtures: a bucket on the moto server shared by a module, a fresh prefix per test."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from s3_helpers import new_bucket


@pytest.fixture(scope="module")
def raw(moto_endpoint: str) -> Any:
    """A plain boto3 client on the moto server, for planting and inspecting objects."""
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture(scope="module")
def bucket(raw: Any) -> str:
    """One bucket per module: the probe runs once for it; tests isolate by prefix."""
    return new_bucket(raw)


@pytest.fixture
def url(bucket: str, moto_endpoint: str) -> str:
    """A fresh ``s3://bucket/<prefix>`` with the moto endpoint in the query string."""
    return f"s3://{bucket}/t-{uuid.uuid4().hex[:12]}?endpoint_url={moto_endpoint}"

