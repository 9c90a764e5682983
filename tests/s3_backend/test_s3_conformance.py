"""The shared conformance suite on the S3 backend: moto in-process and over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from s3_helpers import new_bucket
from s3_raw import S3Raw

from nanosession import Store, open_store
from nanosession.testing import StoreTests


@pytest.fixture(scope="class")
def mocked_bucket() -> Iterator[str]:
    """One in-process mock (and bucket) per class; each test gets a fresh prefix in it."""
    with mock_aws():
        yield new_bucket(boto3.client("s3", region_name="us-east-1"))


class TestS3OverHTTP(S3Raw, StoreTests):
    """Every request crosses a real socket to moto's ThreadedMotoServer on 127.0.0.1."""

    @pytest.fixture
    def store(self, url: str) -> Iterator[Store]:
        with open_store(url) as s:
            yield s


class TestS3InProcess(S3Raw, StoreTests):
    """moto's in-process mock (botocore never opens a socket)."""

    @pytest.fixture
    def store(self, mocked_bucket: str) -> Iterator[Store]:
        url = f"s3://{mocked_bucket}/p-{uuid.uuid4().hex[:8]}"
        with open_store(url, region="us-east-1") as s:
            yield s

    @pytest.mark.skip(reason="moto's in-process mock closes an overwritten object's buffer "
                      "while a concurrent PUT of the same name reads it (ValueError: I/O "
                      "operation on closed file); covered over HTTP by TestS3OverHTTP")
    def test_racing_overwrites_leave_one_complete_state(self) -> None: ...
