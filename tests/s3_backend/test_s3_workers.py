"""Several workers on one bucket, and the format shared with the local backend.

Every request goes over HTTP to moto's server on 127.0.0.1. moto checks conditions without
a lock, so these tests show the protocol (who gets a 412, what the loser does next), not
the server's atomicity, which AWS S3 guarantees.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nanosession import ConflictError, SessionManager, SessionRecord, Update, open_store
from nanosession.testing import HOSTILE_KEYS, assert_same_record

T0 = datetime(2026, 1, 2, 3, 4, 5)


def msg(text: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": text, "timestamp": T0.isoformat()}


def test_two_workers_one_wins_the_loser_retries_and_nothing_is_lost(url: str) -> None:
    with open_store(url) as first:
        first.save(SessionRecord("telegram:1", [msg("hello")], {"title": "chat"}, T0, T0))
    a_store, b_store = open_store(url), open_store(url)  # two workers: own clients
    try:
        assert a_store.backend.client is not b_store.backend.client  # type: ignore[attr-defined]
        a, b = a_store.load("telegram:1"), b_store.load("telegram:1")
        assert a.version == b.version
        a.messages = [*a.messages, msg("from worker A")]
        b.messages = [*b.messages, msg("from worker B")]
        results: dict[str, BaseException | str] = {}
        barrier = threading.Barrier(2)

        def save(name: str, store: Any, record: SessionRecord) -> None:
            barrier.wait()
            try:
                results[name] = store.save(record)
            except ConflictError as exc:
                results[name] = exc

        threads = [threading.Thread(target=save, args=("A", a_store, a)),
                   threading.Thread(target=save, args=("B", b_store, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        lost = [n for n, r in results.items() if isinstance(r, ConflictError)]
        won = [n for n, r in results.items() if isinstance(r, str)]
        assert len(lost) == 1 and len(won) == 1, results
        loser_store, loser_text = (a_store, "from worker A") if lost == ["A"] else (
            b_store, "from worker B")
        fresh = loser_store.load("telegram:1")  # the loser re-reads and re-applies
        fresh.messages = [*fresh.messages, msg(loser_text)]
        loser_store.save(fresh)
        texts = [m["content"] for m in a_store.load("telegram:1").messages]
        assert texts[0] == "hello" and sorted(texts[1:]) == ["from worker A", "from worker B"]
    finally:
        a_store.close()
        b_store.close()


def test_many_workers_appending_with_retries_lose_nothing(url: str) -> None:
    workers, rounds = 4, 5
    with open_store(url) as setup:
        setup.save(SessionRecord("shared", [], {}, T0, T0))
    conflicts = []

    def work(w: int) -> None:
        with open_store(url) as store:
            for r in range(rounds):
                while True:
                    record = store.load("shared")
                    record.messages = [*record.messages, msg(f"w{w}r{r}")]
                    try:
                        store.save(record, mode=Update(record.version or ""))
                        break
                    except ConflictError:
                        conflicts.append(w)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with open_store(url) as check:
        texts = [m["content"] for m in check.load("shared").messages]
    assert sorted(texts) == sorted(f"w{w}r{r}" for w in range(workers) for r in range(rounds))
    for w in range(workers):  # each worker's own messages stay in its order
        mine = [t for t in texts if t.startswith(f"w{w}r")]
        assert mine == [f"w{w}r{r}" for r in range(rounds)]


def test_two_session_managers_never_overwrite_each_other(url: str) -> None:
    """nanobot's API on two workers: the stale save raises instead of losing a turn."""
    with SessionManager.from_url(url) as one, SessionManager.from_url(url) as two:
        s1 = one.get_or_create("cli:direct")
        s1.add_message("user", "first")
        one.save(s1)
        s2 = two.get_or_create("cli:direct")
        assert [m["content"] for m in s2.messages] == ["first"]
        s1.add_message("assistant", "reply from one")
        one.save(s1)
        s2.add_message("assistant", "reply from two")
        with pytest.raises(ConflictError):
            two.save(s2)
        two.invalidate("cli:direct")
        again = two.get_or_create("cli:direct")
        again.add_message("user", "after reload")
        two.save(again)
        assert [m["content"] for m in one.read_session_file("cli:direct")["messages"]] == [
            "first", "reply from one", "after reload"]


def _sync_up(src: Path, raw: Any, bucket: str, prefix: str) -> None:
    """What ``aws s3 sync <dir> s3://bucket/prefix`` does: one object per file, bytes as is."""
    for path in src.iterdir():
        raw.put_object(Bucket=bucket, Key=prefix + path.name, Body=path.read_bytes())


def _sync_down(raw: Any, bucket: str, prefix: str, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            body = raw.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            (dst / obj["Key"][len(prefix):]).write_bytes(body)


def test_local_to_s3_to_local_round_trip(tmp_path: Path, url: str, raw: Any) -> None:
    """Files the local backend wrote (appends included) read back identical from S3 after
    a plain byte-for-byte sync, and S3's objects read back identical with the local backend."""
    keys = ["telegram:12345", "cli:direct", *HOSTILE_KEYS[:20], "x" * 300]
    records = {}
    with open_store(str(tmp_path / "laptop")) as local:
        for i, key in enumerate(keys):
            record = SessionRecord(key, [msg(f"{i} hi"), msg("yo", "assistant")],
                                   {"title": f"t{i}"}, T0, T0 + timedelta(minutes=i))
            version = local.save(record)
            record.messages = [*record.messages, msg(f"{i} appended")]
            record.updated_at += timedelta(seconds=1)
            local.save(record, mode=Update(version), unchanged=2)  # a local append
            records[key] = record
    with open_store(url) as s3:
        bucket, prefix = s3.backend.bucket, s3.backend.prefix  # type: ignore[attr-defined]
        _sync_up(tmp_path / "laptop", raw, bucket, prefix)
        for key, record in records.items():
            assert_same_record(s3.load(key), record)
        listed = {i.key: i for i in s3.list()}
        assert set(listed) == set(keys)
        assert all(listed[k].title == records[k].metadata["title"] for k in keys)
        changed = s3.load("telegram:12345")
        changed.messages = [*changed.messages, msg("written on S3")]
        s3.save(changed)
        records["telegram:12345"] = changed
    _sync_down(raw, bucket, prefix, tmp_path / "back")
    with open_store(str(tmp_path / "back")) as back:
        for key, record in records.items():
            assert_same_record(back.load(key), record)
        assert sorted(i.key for i in back.list()) == sorted(keys)
