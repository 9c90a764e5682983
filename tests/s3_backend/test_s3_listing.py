"""Listing at scale over real HTTP, with the requests counted from botocore's events."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from loguru import logger
from nanosession_s3.metrics import RequestCounter

from nanosession import SessionRecord, Store, Update, jsonl, open_store
from nanosession.testing import HOSTILE_KEYS

T0 = datetime(2026, 3, 1, 12, 0, 0)
N = 1234


def plant(store: Store, raw: Any, records: list[SessionRecord]) -> None:
    """Write objects exactly as the backend would, eight at a time (setup, not measured)."""
    backend: Any = store.backend

    def put(record: SessionRecord) -> None:
        raw.put_object(Bucket=backend.bucket, Key=backend.object_name(record.key),
                       Body=jsonl.encode(record))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, records))


@pytest.fixture(scope="module")
def big(raw: Any, bucket: str, moto_endpoint: str) -> str:
    """A prefix holding N sessions: more than one ListObjectsV2 page."""
    url = f"s3://{bucket}/big?endpoint_url={moto_endpoint}"
    with open_store(url) as store:
        plant(store, raw, [
            SessionRecord(f"user:{i:05d}", [{"role": "user", "content": f"q{i}"}],
                          {"title": f"T{i}"}, T0, T0 + timedelta(minutes=i))
            for i in range(N)
        ])
    return url


def test_listing_without_details_pages_and_reads_nothing(big: str) -> None:
    with open_store(big) as store:
        counter = RequestCounter.attach(store.backend.client)  # type: ignore[attr-defined]
        infos = store.list(details=False)
        assert len(infos) == N and len({i.key for i in infos}) == N
        assert dict(counter.requests) == {"ListObjectsV2": math.ceil(N / 1000)}
        assert all(i.version and i.size and i.title is None for i in infos)
        stamps = [i.updated_at for i in infos]
        assert stamps == sorted(stamps, reverse=True)


def test_details_only_for_the_entries_asked_for(big: str) -> None:
    with open_store(big) as store:
        counter = RequestCounter.attach(store.backend.client)  # type: ignore[attr-defined]
        top = store.list(limit=25)
        assert dict(counter.requests) == {"ListObjectsV2": 2, "GetObject": 25}
        assert all(i.title and i.title.startswith("T") and i.preview for i in top)
        assert all(i.message_count == 1 and i.error is None for i in top)
        assert counter.received["GetObject"] < 25 * 1024  # small sessions: one whole read each


def test_a_key_prefix_narrows_the_listing(big: str) -> None:
    with open_store(big) as store:
        counter = RequestCounter.attach(store.backend.client)  # type: ignore[attr-defined]
        keys = sorted(i.key for i in store.list("user:0012", details=False))
        assert keys == [f"user:{i:05d}" for i in range(120, 130)]
        # base64 of "user:0" names one page; hashed names ("~") are listed separately.
        assert dict(counter.requests) == {"ListObjectsV2": 2}


def test_details_are_fetched_in_parallel_within_the_bound(url: str, raw: Any) -> None:
    with open_store(url, list_concurrency=4) as store:
        plant(store, raw, [SessionRecord(f"k{i}", [{"role": "user", "content": "x"}])
                           for i in range(24)])
        in_flight, peak, lock = [0], [0], threading.Lock()

        def before(**_: Any) -> None:
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.02)  # make overlapping requests overlap for sure

        def after(**_: Any) -> None:
            with lock:
                in_flight[0] -= 1

        events = store.backend.client.meta.events  # type: ignore[attr-defined]
        events.register("before-send.s3.GetObject", before)
        events.register("needs-retry.s3.GetObject", after)
        assert len(store.list()) == 24
        assert 2 <= peak[0] <= 4


def test_large_sessions_are_read_by_head_and_tail(url: str) -> None:
    with open_store(url) as store:
        record = SessionRecord("long", [{"role": "user", "content": "first question"}],
                               {"title": "old title"}, T0, T0)
        record.messages = [*record.messages,
                           *({"role": "assistant", "content": "x" * 1000} for _ in range(300))]
        version = store.save(record)
        record.metadata = {"title": "new title"}
        record.updated_at = T0 + timedelta(hours=1)
        store.save(record, mode=Update(version))
        counter = RequestCounter.attach(store.backend.client)  # type: ignore[attr-defined]
        (info,) = store.list()
        assert dict(counter.requests) == {"ListObjectsV2": 1, "GetObject": 2}
        assert counter.received["GetObject"] <= 48 * 1024
        assert (info.title, info.preview, info.updated_at) == ("new title", "first question",
                                                               record.updated_at)
        assert info.size and info.size > 300_000 and info.version == store.load("long").version


def test_hashed_names_are_listed_and_their_keys_remembered(url: str) -> None:
    long_keys = [f"{'k' * 200}{i}" for i in range(5)]
    with open_store(url) as store:
        for key in [*long_keys, "short"]:
            store.save(SessionRecord(key, [{"role": "user", "content": key[-1]}]))
        names = [store.backend.object_name(k) for k in long_keys]  # type: ignore[attr-defined]
        assert all("/~" in n for n in names)
        counter = RequestCounter.attach(store.backend.client)  # type: ignore[attr-defined]
        assert sorted(i.key for i in store.list("k" * 150, details=False)) == long_keys
        assert counter.requests["GetObject"] == 5  # one head per hashed name, once
        counter.reset()
        assert sorted(i.key for i in store.list(details=False)) == sorted([*long_keys, "short"])
        assert counter.requests["GetObject"] == 0


def test_hostile_keys_stay_inside_the_prefix(bucket: str, moto_endpoint: str, raw: Any) -> None:
    url = f"s3://{bucket}/jail/inner?endpoint_url={moto_endpoint}"
    with open_store(url) as store:
        for key in HOSTILE_KEYS:
            name = store.backend.object_name(key)  # type: ignore[attr-defined]
            stem = name.removeprefix("jail/inner/").removesuffix(".jsonl")
            assert name.startswith("jail/inner/") and "/" not in stem and ".." not in name
            store.save(SessionRecord(key, [{"role": "user", "content": "x"}]))
        pages = raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="jail")
        stored = [o["Key"] for p in pages for o in p.get("Contents", ())]
        assert len(stored) == len(HOSTILE_KEYS) and len(set(stored)) == len(stored)
        assert all(k.startswith("jail/inner/") and k.count("/") == 2 for k in stored)
        assert sorted(i.key for i in store.list(details=False)) == sorted(HOSTILE_KEYS)


def test_nested_prefixes_and_foreign_objects_are_not_sessions(url: str, raw: Any) -> None:
    base = url.split("?")[0]
    with open_store(url) as outer, open_store(url.replace(base, base + "/inner")) as inner:
        outer.save(SessionRecord("outer", [{"role": "user", "content": "o"}]))
        inner.save(SessionRecord("inner", [{"role": "user", "content": "i"}]))
        backend: Any = outer.backend
        for junk in ("notes.txt", "aw.jsonl.corrupt-20260101T000000Z",
                     ".nanosession-probe-x", "telegram_12345.jsonl"):
            raw.put_object(Bucket=backend.bucket, Key=backend.prefix + junk, Body=b"{}")
        seen: list[str] = []
        sink = logger.add(lambda m: seen.append(str(m)), level="WARNING")
        logger.enable("nanosession_s3")
        try:
            assert [i.key for i in outer.list()] == ["outer"]
            assert [i.key for i in outer.list(details=False)] == ["outer"]
        finally:
            logger.disable("nanosession_s3")
            logger.remove(sink)
        assert any("1 object(s)" in line and "nanosession copy" in line for line in seen)
        assert [i.key for i in inner.list()] == ["inner"]


def test_large_objects_nanobot_wrote_are_read_by_head_alone(url: str, raw: Any) -> None:
    with open_store(url) as store:
        backend: Any = store.backend
        meta = ('{"_type": "metadata", "key": "nb:long", "created_at": "2026-03-01T12:00:00", '
                '"updated_at": "2026-03-02T12:00:00", "metadata": {"title": "nanobot"}, '
                '"last_consolidated": 0}')
        body = "\n".join([meta, '{"role": "user", "content": "from nanobot"}',
                          *('{"role": "assistant", "content": "%s"}' % ("y" * 1000)
                            for _ in range(100))]) + "\n"
        raw.put_object(Bucket=backend.bucket, Key=backend.object_name("nb:long"),
                       Body=body.encode())
        counter = RequestCounter.attach(backend.client)
        infos = {i.key: i for i in store.list(prefix="nb:")}
        assert counter.requests["GetObject"] == 1  # the first 32 KiB; no ranged tail read
        info = infos["nb:long"]
        assert (info.title, info.preview, info.error) == ("nanobot", "from nanobot", None)
        assert info.updated_at == datetime(2026, 3, 2, 12, 0)
