"""URLs, options and client set-up: every mistake is a typed error before a request is sent."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from nanosession_s3.options import S3Options, parse_url

from nanosession import (
    BackendUnavailableError,
    ConfigurationError,
    InvalidURLError,
    SessionRecord,
    open_store,
)
from nanosession.registry import default_registry


@pytest.mark.parametrize(("url", "bucket", "prefix"), [
    ("s3://bucket", "bucket", ""),
    ("s3://bucket/", "bucket", ""),
    ("s3://my.bucket-1/sessions", "my.bucket-1", "sessions/"),
    ("s3://bucket//a///b/", "bucket", "a/b/"),
    ("s3://bucket/a b/ключ", "bucket", "a b/ключ/"),
    ("S3://bucket/x", "bucket", "x/"),
])
def test_urls_normalise(url: str, bucket: str, prefix: str) -> None:
    assert parse_url(url) == (bucket, prefix)


@pytest.mark.parametrize(("url", "why"), [
    ("s3://", "no bucket"),
    ("s3:///prefix", "no bucket"),
    ("s3://ab/p", "invalid bucket"),
    ("s3://Bucket/p", "invalid bucket"),
    ("s3://-bucket/p", "invalid bucket"),
    ("s3://bucket_1/p", "invalid bucket"),
    ("s3://a..b/p", "'..'"),
    ("s3://192.168.1.1/p", "IP address"),
    ("s3://user:secret@bucket/p", "credentials"),
    ("s3://bucket/a/../b", "'..'"),
    ("s3://bucket/./b", "'..'"),
    ("s3://bucket/a\x01b", "control character"),
    ("s3://bucket/" + "p" * 900, "longer than"),
])
def test_bad_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(InvalidURLError, match=why):
        open_store(url)


def test_query_string_options_are_coerced(moto_endpoint: str) -> None:
    url = (f"s3://bucket/p?endpoint_url={moto_endpoint}&max_attempts=7&connect_timeout=1.5"
           "&read_timeout=4&retry_mode=adaptive&list_concurrency=3&region_name=eu-west-3"
           "&addressing_style=path&conditional_writes=assume&on_unsupported=warn")
    with open_store(url) as store:
        backend: Any = store.backend
        opts = backend.opts
        assert (opts.max_attempts, opts.connect_timeout, opts.read_timeout) == (7, 1.5, 4.0)
        assert (opts.list_concurrency, opts.region, opts.retry_mode) == (3, "eu-west-3",
                                                                         "adaptive")
        config = backend.client.meta.config
        assert config.retries == {"mode": "adaptive", "total_max_attempts": 7}
        assert (config.connect_timeout, config.read_timeout) == (1.5, 4.0)
        assert config.s3 == {"addressing_style": "path"}
        assert backend.client.meta.region_name == "eu-west-3"
        assert backend.client.meta.endpoint_url == moto_endpoint
        assert config.max_pool_connections == 10


def test_defaults_use_standard_retries() -> None:
    with open_store("s3://bucket/p") as store:
        config = store.backend.client.meta.config  # type: ignore[attr-defined]
        assert config.retries == {"mode": "standard", "total_max_attempts": 5}
        assert config.max_pool_connections == 16


@pytest.mark.parametrize(("options", "match"), [
    ({"max_attempts": "0"}, "max_attempts must be >= 1"),
    ({"max_attempts": "many"}, "max_attempts must be a number"),
    ({"connect_timeout": "-1"}, "connect_timeout"),
    ({"retry_mode": "forever"}, "retry_mode must be one of standard, adaptive, legacy"),
    ({"conditional_writes": "maybe"}, "conditional_writes"),
    ({"on_unsupported": "ignore"}, "on_unsupported"),
    ({"sse": "rot13"}, "sse must be one of"),
    ({"sse_kms_key_id": "k"}, "needs sse=aws:kms"),
    ({"bucket_key_enabled": "perhaps"}, "true or false"),
    ({"bucket": "other"}, "unknown option.*bucket"),
    ({"client": object(), "endpoint_url": "http://x"}, "endpoint_url shape a client"),
])
def test_bad_options_are_refused(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        open_store("s3://bucket/p", **options)


def test_credentials_never_show(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "SUPERSECRETVALUE123"
    opts = S3Options.parse({"aws_access_key_id": "AKIDEXAMPLE",
                            "aws_secret_access_key": secret, "aws_session_token": secret})
    assert secret not in repr(opts) and "AKIDEXAMPLE" not in repr(opts)
    with pytest.raises(ConfigurationError) as info:
        open_store("s3://bucket/p", aws_secret_access_key=secret, max_attempts="x")
    assert secret not in str(info.value)


def test_a_caller_client_is_used_and_left_open(moto_endpoint: str, bucket: str) -> None:
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    with open_store(f"s3://{bucket}/caller", client=client) as store:
        assert store.backend.client is client  # type: ignore[attr-defined]
        store.save(SessionRecord("k", [{"role": "user", "content": "x"}]))
    assert client.head_object(Bucket=bucket, Key="caller/aw.jsonl")["ContentLength"] > 0


def test_profiles_come_from_the_normal_chain(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text("[profile work]\nregion = ap-southeast-2\n"
                      "aws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # the environment beats the profile
    with open_store("s3://bucket/p", profile="work") as store:
        client = store.backend.client  # type: ignore[attr-defined]
        assert client.meta.region_name == "ap-southeast-2"
        assert client._request_signer._credentials.access_key == "AKIDPROFILE"
    with pytest.raises(ConfigurationError, match="cannot configure the S3 client"):
        open_store("s3://bucket/p", profile="no-such-profile")


def test_server_side_encryption_is_requested(moto_endpoint: str, bucket: str, raw: Any) -> None:
    for options, expected in (({"sse": "AES256"}, {"ServerSideEncryption": "AES256"}),
                              ({"sse": "aws:kms", "sse_kms_key_id": "alias/sessions",
                                "bucket_key_enabled": "true"},
                               {"ServerSideEncryption": "aws:kms",
                                "SSEKMSKeyId": "alias/sessions", "BucketKeyEnabled": True})):
        url = f"s3://{bucket}/sse-{options['sse'].replace(':', '')}"
        with open_store(url, endpoint_url=moto_endpoint, **options) as store:
            store.save(SessionRecord("k", [{"role": "user", "content": "secret-ish"}]))
            head = raw.head_object(Bucket=bucket, Key=store.backend.object_name("k"))  # type: ignore[attr-defined]
        assert {k: head.get(k) for k in expected} == expected


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin registers without boto3; opening a store says what to install."""
    assert default_registry().backend_for("s3").plugin == "s3"
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError
    with pytest.raises(BackendUnavailableError, match=r"pip install 'nanosession\[s3\]'"):
        open_store("s3://bucket/p")


def test_checksums_can_be_limited_to_what_s3_requires(url: str) -> None:
    """``checksums=when_required`` sends no CRC32 checksum (over HTTPS: no aws-chunked
    trailer), which some S3-compatible servers reject; the default keeps botocore's."""
    seen: list[set[str]] = []
    for checksums in ("when_required", "when_supported"):
        with open_store(url, checksums=checksums) as store:
            client = store.backend.client  # type: ignore[attr-defined]
            assert client.meta.config.request_checksum_calculation == checksums
            assert client.meta.config.response_checksum_validation == checksums
            client.meta.events.register("before-send.s3.PutObject", lambda request, **_: (
                seen.append({h.lower() for h in request.headers})))
            store.save(SessionRecord("k", [{"role": "user", "content": checksums}]),
                       mode="overwrite")
            assert store.load("k").messages[0]["content"] == checksums
    assert "x-amz-checksum-crc32" not in seen[0] and "x-amz-checksum-crc32" in seen[1]
