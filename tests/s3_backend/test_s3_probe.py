"""Honest capabilities: a server that ignores If-Match / If-None-Match is detected.

The "old server" is moto over HTTP with the condition headers removed before each request
is signed, so moto really receives plain writes and really overwrites, exactly what a
store without conditional-write support does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from loguru import logger
from nanosession_s3 import probe
from nanosession_s3.metrics import RequestCounter
from s3_helpers import new_bucket

from nanosession import CapabilityError, ConflictError, SessionRecord, Update, open_store

CONDITIONS = ("If-Match", "If-None-Match")


def old_server_client(endpoint: str, strip: dict[str, tuple[str, ...]]) -> Any:
    """A client whose requests lose the named headers per operation (``"*"``: all)."""
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

    def drop(request: Any, operation_name: str, **_: Any) -> None:
        for header in strip.get(operation_name, strip.get("*", ())):
            if header in request.headers:
                del request.headers[header]

    client.meta.events.register("before-sign.s3", drop)
    return client


def record(text: str) -> SessionRecord:
    return SessionRecord("k", [{"role": "user", "content": text}])


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING")
    logger.enable("nanosession_s3")
    yield seen
    logger.disable("nanosession_s3")
    logger.remove(sink)


def test_an_honouring_server_is_probed_once_and_left_clean(moto_endpoint: str,
                                                           raw: Any) -> None:
    bucket = new_bucket(raw)
    url = f"s3://{bucket}/p?endpoint_url={moto_endpoint}"
    with open_store(url) as store:
        counter = RequestCounter.attach(store.backend.client)  # type: ignore[attr-defined]
        caps = store.capabilities
        assert caps.compare_and_swap and caps.exclusive_create and caps.atomic_write
        assert not caps.append and "probed" in caps.notes
        assert counter.requests == {"PutObject": 3, "DeleteObject": 2, "ListObjectsV2": 1}
        assert counter.statuses[("PutObject", 412)] == 2
        assert counter.statuses[("DeleteObject", 412)] == 1
    assert "Contents" not in raw.list_objects_v2(Bucket=bucket)  # the probe object is gone
    with open_store(url) as again:  # cached for this endpoint and bucket
        counter = RequestCounter.attach(again.backend.client)  # type: ignore[attr-defined]
        again.save(record("one"))
        assert dict(counter.requests) == {"PutObject": 1}


def test_a_server_ignoring_conditions_is_refused_loudly(moto_endpoint: str, raw: Any) -> None:
    bucket = new_bucket(raw)
    client = old_server_client(moto_endpoint, {"*": CONDITIONS})
    with open_store(f"s3://{bucket}/p", client=client) as store:
        caps = store.capabilities
        assert not caps.compare_and_swap and not caps.exclusive_create
        assert "If-Match on PUT" in caps.notes and "If-None-Match on PUT" in caps.notes
        with pytest.raises(CapabilityError, match="does not enforce If-None-Match"):
            store.save(record("new"))  # default mode of a new record: create
        assert store.get("k") is None
        version = store.save(record("forced"), mode="overwrite")
        with pytest.raises(CapabilityError, match="If-Match on PUT"):
            store.save(record("update"), mode=Update(version))
        with pytest.raises(CapabilityError, match="If-Match on DELETE"):
            store.delete("k", version=version)
        assert store.load("k").messages[0]["content"] == "forced"


def test_warn_mode_checks_first_and_says_so_once(moto_endpoint: str, raw: Any,
                                                 warnings: list[str]) -> None:
    bucket = new_bucket(raw)
    client = old_server_client(moto_endpoint, {"*": CONDITIONS})
    with open_store(f"s3://{bucket}/p", client=client, on_unsupported="warn") as store:
        assert not store.capabilities.compare_and_swap
        first = store.save(record("one"))
        with pytest.raises(ConflictError):
            store.save(record("clobber"))  # create over an existing session
        second = store.save(record("two"), mode=Update(first))
        with pytest.raises(ConflictError):
            store.save(record("stale"), mode=Update(first))  # sequential staleness is seen
        with pytest.raises(ConflictError):
            store.delete("k", version=first)
        assert store.load("k").messages[0]["content"] == "two"
        assert store.delete("k", version=second) is True
    text = "\n".join(warnings)
    for what in ("If-None-Match on PUT", "If-Match on PUT", "If-Match on DELETE"):
        assert text.count(f"does not enforce {what}") == 1, text
    assert "racing workers can overwrite" in text


def test_partial_support_is_reported_as_such(moto_endpoint: str, raw: Any) -> None:
    bucket = new_bucket(raw)
    client = old_server_client(moto_endpoint, {"DeleteObject": ("If-Match",)})
    with open_store(f"s3://{bucket}/p", client=client) as store:
        caps = store.capabilities
        assert caps.exclusive_create and not caps.compare_and_swap
        assert caps.notes.endswith("ignores some conditions: If-Match on DELETE")
        version = store.save(record("one"))
        store.save(record("two"), mode=Update(version))  # updates are still enforced
        with pytest.raises(CapabilityError):
            store.delete("k", version=version)


def test_assume_skips_the_probe(moto_endpoint: str, raw: Any) -> None:
    bucket = new_bucket(raw)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    counter = RequestCounter.attach(client)
    with open_store(f"s3://{bucket}/p", client=client, conditional_writes="assume") as store:
        assert store.capabilities.compare_and_swap
        assert "assumed" in store.capabilities.notes
        store.save(record("one"))
        with pytest.raises(ConflictError):
            store.save(record("two"))
    assert counter.requests["PutObject"] == 2 and counter.requests["DeleteObject"] == 0


def test_a_probe_that_cannot_run_is_not_cached(moto_endpoint: str) -> None:
    with open_store(f"s3://no-such-bucket-{id(object())}/p",
                    endpoint_url=moto_endpoint) as store:
        caps = store.capabilities
        assert not caps.compare_and_swap and "not probed yet" in caps.notes
        slot = (moto_endpoint, store.backend.bucket)  # type: ignore[attr-defined]
        assert slot not in probe._cache


def test_probe_objects_left_by_killed_processes_are_removed(
    moto_endpoint: str, s3_bucket: str
) -> None:
    """A process killed mid-probe leaves its probe object; the next probe removes it once
    it is older than any probe still in flight, and leaves a fresh one alone."""
    import boto3
    from nanosession_s3 import probe

    raw = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    stale, fresh = f"p/{probe.PROBE_STEM}dead", f"p/{probe.PROBE_STEM}inflight"
    for name in (stale, fresh):
        raw.put_object(Bucket=s3_bucket, Key=name, Body=b"probe")
    original = probe.STALE_PROBE
    try:
        probe.STALE_PROBE = probe.timedelta(seconds=-60)  # everything counts as stale
        probe._remove_stale_probes(raw, s3_bucket, "p/")
    finally:
        probe.STALE_PROBE = original
    assert "Contents" not in raw.list_objects_v2(Bucket=s3_bucket, Prefix="p/")
    raw.put_object(Bucket=s3_bucket, Key=fresh, Body=b"probe")
    probe._remove_stale_probes(raw, s3_bucket, "p/")
    keys = [o["Key"] for o in raw.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == [fresh]
