"""Failures over real HTTP: retried throttling, never-retried 412, 409, lost responses,
missing buckets, unreachable endpoints; each ends in one typed error or a correct result.

Faults are injected with botocore's own events: a ``before-send`` handler that answers a
request itself (as a throttling S3 front end would) or that sends it and then drops the
response (as a timed-out connection does).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from loguru import logger
from nanosession_s3.metrics import RequestCounter

from nanosession import (
    ConfigurationError,
    ConflictError,
    SessionRecord,
    StorageError,
    Update,
    open_store,
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def error_body(code: str) -> bytes:
    return f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>m</Message></Error>".encode()


def answer(client: Any, op: str, replies: list[tuple[int, str]]) -> None:
    """Answer the next ``len(replies)`` ``op`` requests with these errors instead of S3."""
    pending = list(replies)

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        if not pending:
            return None
        status, code = pending.pop(0)
        return AWSResponse(request.url, status, {"content-type": "application/xml"},
                           _Raw(error_body(code)))

    client.meta.events.register(f"before-send.s3.{op}", before_send)


def record(text: str) -> SessionRecord:
    return SessionRecord("k", [{"role": "user", "content": text}])


@pytest.fixture
def store_and_counter(url: str) -> Iterator[tuple[Any, RequestCounter]]:
    with open_store(url, max_attempts=3) as store:
        store.capabilities  # noqa: B018 - probe before counting
        yield store, RequestCounter.attach(store.backend.client)  # type: ignore[attr-defined]


def test_throttling_and_server_errors_are_retried(
    store_and_counter: tuple[Any, RequestCounter]
) -> None:
    store, counter = store_and_counter
    answer(store.backend.client, "PutObject", [(503, "SlowDown"), (500, "InternalError")])
    version = store.save(record("kept"))
    assert counter.requests["PutObject"] == 3
    assert store.load("k").version == version


def test_retries_stop_at_max_attempts_with_one_clear_line(
    store_and_counter: tuple[Any, RequestCounter]
) -> None:
    store, counter = store_and_counter
    answer(store.backend.client, "GetObject", [(503, "SlowDown")] * 5)
    with pytest.raises(StorageError) as info:
        store.get("k")
    assert counter.requests["GetObject"] == 3
    message = str(info.value)
    assert "SlowDown" in message and "HTTP 503" in message and "\n" not in message


def test_a_failed_condition_is_never_retried(
    store_and_counter: tuple[Any, RequestCounter]
) -> None:
    store, counter = store_and_counter
    stale = store.save(record("one"))
    store.save(record("two"), mode=Update(stale))
    counter.reset()
    with pytest.raises(ConflictError):
        store.save(record("three"), mode=Update(stale))
    assert counter.statuses[("PutObject", 412)] == 1 and counter.requests["PutObject"] == 1
    assert dict(counter.requests) == {"PutObject": 1, "HeadObject": 1}  # was it our write?
    assert store.load("k").messages[0]["content"] == "two"


def test_a_409_rereads_then_retries_once(store_and_counter: tuple[Any, RequestCounter]) -> None:
    store, counter = store_and_counter
    version = store.save(record("one"))
    counter.reset()
    answer(store.backend.client, "PutObject", [(409, "ConditionalRequestConflict")])
    version = store.save(record("two"), mode=Update(version))
    assert dict(counter.requests) == {"PutObject": 2, "HeadObject": 1}
    assert store.load("k").messages[0]["content"] == "two"
    answer(store.backend.client, "PutObject", [(409, "ConditionalRequestConflict")] * 2)
    with pytest.raises(ConflictError):
        store.save(record("three"), mode=Update(version))
    assert store.load("k").version == version


@pytest.mark.parametrize("mode", ["create", "update"])
def test_a_write_whose_response_was_lost_is_still_ours(
    store_and_counter: tuple[Any, RequestCounter], mode: str
) -> None:
    """The PUT lands, the response is lost, botocore retries and gets 412: not a conflict."""
    store, counter = store_and_counter
    put_mode: Any = "create"
    if mode == "update":
        put_mode = Update(store.save(record("before")))
    http = urllib3.PoolManager()
    lost: list[int] = []

    def deliver_then_time_out(request: Any, **_: Any) -> None:
        if not lost:
            lost.append(http.request(request.method, request.url, body=request.body,
                                     headers=dict(request.headers)).status)
            raise ReadTimeoutError(endpoint_url=request.url)

    store.backend.client.meta.events.register("before-send.s3.PutObject",
                                              deliver_then_time_out)
    counter.reset()
    version = store.save(record("after"), mode=put_mode)
    assert lost == [200]
    assert counter.statuses[("PutObject", 412)] == 1
    loaded = store.load("k")
    assert loaded.version == version and loaded.messages[0]["content"] == "after"


def test_access_denied_says_what_to_check(
    store_and_counter: tuple[Any, RequestCounter]
) -> None:
    store, counter = store_and_counter
    answer(store.backend.client, "GetObject", [(403, "AccessDenied")])
    with pytest.raises(StorageError, match=r"refused load .* AccessDenied .*credentials"):
        store.get("k")
    assert counter.requests["GetObject"] == 1  # a refusal is not retried


def test_a_missing_bucket_names_the_bucket(moto_endpoint: str) -> None:
    with open_store("s3://not-created-here/p", endpoint_url=moto_endpoint) as store:
        for action in (lambda: store.get("k"), store.list,
                       lambda: store.save(record("x"), mode="overwrite")):
            with pytest.raises(ConfigurationError, match="'not-created-here' does not exist"):
                action()


def test_an_unreachable_endpoint_fails_fast_and_never_shows_credentials() -> None:
    secret = "SUPERSECRETVALUE123"
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="DEBUG")
    logger.enable("nanosession")
    logger.enable("nanosession_s3")
    started = time.monotonic()
    try:
        with open_store("s3://bucket/p", endpoint_url="http://127.0.0.1:1", max_attempts=2,
                        connect_timeout=0.5, aws_access_key_id="AKIDX",
                        aws_secret_access_key=secret) as store:
            counter = RequestCounter.attach(store.backend.client)  # type: ignore[attr-defined]
            for action in (lambda: store.get("k"), lambda: store.save(record("x"))):
                with pytest.raises(StorageError) as info:
                    action()
                message = str(info.value)
                assert "cannot reach the S3 endpoint" in message and "\n" not in message
                assert secret not in message
    finally:
        logger.disable("nanosession")
        logger.disable("nanosession_s3")
        logger.remove(sink)
    assert counter.requests["GetObject"] == 2
    assert time.monotonic() - started < 15
    assert seen and not any(secret in line for line in seen)


def test_repair_keeps_the_original_bytes_beside_it(url: str, raw: Any) -> None:
    with open_store(url) as store:
        store.save(record("intact"))
        backend: Any = store.backend
        name = backend.object_name("k")
        damaged = raw.get_object(Bucket=backend.bucket, Key=name)["Body"].read() + b"42\n"
        raw.put_object(Bucket=backend.bucket, Key=name, Body=damaged)
        report = store.repair("k")
        assert report.repaired and report.backup
        assert report.backup.startswith(f"s3://{backend.bucket}/{name}.corrupt-")
        backup = report.backup.removeprefix(f"s3://{backend.bucket}/")
        assert raw.get_object(Bucket=backend.bucket, Key=backup)["Body"].read() == damaged
        assert [i.key for i in store.list()] == ["k"]
        assert store.load("k").messages[0]["content"] == "intact"


@pytest.mark.parametrize("version", ["", "line\nbreak", 'quo"te', "ünï", " "])
def test_a_version_no_etag_can_be_is_a_conflict(url: str, version: str) -> None:
    with open_store(url) as store:
        store.save(record("kept"))
        with pytest.raises(ConflictError, match="conflict on session 'k'"):
            store.save(record("other"), mode=Update(version))
        backend: Any = store.backend  # Store.delete treats version="" as no version
        with pytest.raises(ConflictError):
            backend.nanosession_delete(key="k", mode=Update(version))
        assert store.load("k").messages[0]["content"] == "kept"
