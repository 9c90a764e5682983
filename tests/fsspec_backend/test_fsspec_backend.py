"""The fsspec backend's behaviour on every tested protocol, real servers included."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nanosession import (
    ConflictError,
    CorruptSessionError,
    SerializationError,
    SessionNotFoundError,
    SessionRecord,
    Update,
    jsonl,
    open_store,
)
from nanosession.keys import storage_name

if TYPE_CHECKING:
    from conftest import Target

KEYS = ["telegram:12345", "a/b\\c", "ünï côdé ✓", "x" * 400]


def record(key: str, n: int = 2, **meta: object) -> SessionRecord:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"}
                for i in range(n)]
    return SessionRecord(key, messages, metadata=dict(meta))


def raw_names(target: Target) -> list[str]:
    backend = target.open().backend
    backend.fs.invalidate_cache()
    return sorted(p.rsplit("/", 1)[-1] for p in backend.fs.ls(backend.root, detail=False))


def test_round_trip_keeps_everything_and_uses_the_shared_format(target: Target) -> None:
    store = target.open()
    for key in KEYS:
        rec = record(key, 3, title="T")
        rec.extra = {"last_archived": 0, "custom": [1, 2]}
        version = store.save(rec)
        back = store.load(key)
        assert back.key == key and back.version == version
        assert list(back.messages) == list(rec.messages)
        assert back.metadata == {"title": "T"} and back.extra.get("custom") == [1, 2]
        raw = store.backend._read(store.backend.path(key))
        assert raw == jsonl.encode(rec)  # byte-identical to the local backend's format
    names = raw_names(target)
    assert names == sorted(storage_name(k) + ".jsonl" for k in KEYS)  # no temp files left


def test_create_refuses_an_existing_session(target: Target) -> None:
    store = target.open()
    store.save(record("k"), mode="create")
    with pytest.raises(ConflictError):
        store.save(record("k", 5), mode="create")
    assert len(store.load("k").messages) == 2


def test_stale_update_is_refused_and_fresh_one_wins(target: Target) -> None:
    a, b = target.open(), target.open()
    a.save(record("k"))
    mine, theirs = a.load("k"), b.load("k")
    theirs.messages = [*theirs.messages, {"role": "user", "content": "theirs"}]
    b.save(theirs)
    mine.messages = [*mine.messages, {"role": "user", "content": "mine"}]
    with pytest.raises(ConflictError):
        a.save(mine)
    assert a.load("k").messages[-1]["content"] == "theirs"
    fresh = a.load("k")
    fresh.metadata = {"title": "again"}
    a.save(fresh)
    assert b.load("k").metadata == {"title": "again"}
    b.delete("k")
    with pytest.raises(ConflictError, match="deleted"):
        a.save(fresh, mode=Update(fresh.version))  # type: ignore[arg-type]


def test_overwrite_and_delete(target: Target) -> None:
    store = target.open()
    store.save(record("k"))
    stale = store.load("k").version
    store.save(record("k", 4), mode="overwrite")
    assert len(store.load("k").messages) == 4
    with pytest.raises(ConflictError):
        store.delete("k", version=stale)
    assert store.delete("k", version=store.load("k").version) is True
    assert store.get("k") is None
    assert store.delete("k") is False
    with pytest.raises(SessionNotFoundError):
        store.load("k")


def test_second_client_sees_writes_at_once(target: Target) -> None:
    first, second = target.open(), target.open()
    assert first.list() == [] and first.get("k") is None  # fills any listing cache
    second.save(record("k", title="from second"))
    assert [i.key for i in first.list(details=False)] == ["k"]
    assert first.list()[0].title == "from second"
    assert first.load("k").metadata == {"title": "from second"}
    rec = second.load("k")
    rec.messages = [*rec.messages, {"role": "user", "content": "more"}]
    second.save(rec)
    assert len(first.load("k").messages) == 3
    assert first.list()[0].message_count == 3
    second.delete("k")
    assert first.list() == [] and first.get("k") is None


def test_listing_newest_first_with_prefix_limit_and_details(target: Target) -> None:
    store = target.open()
    for i, key in enumerate(["chat:1", "chat:2", "other:3"]):
        rec = record(key, i + 1, title=f"title {i}")
        rec.updated_at = datetime(2025, 1, 1 + i)
        store.save(rec)
        time.sleep(1.05 if target.protocol in ("ftp", "sftp", "webdav", "s3") else 0.01)
    listed = store.list()
    assert [i.key for i in listed] == ["other:3", "chat:2", "chat:1"]
    assert [i.message_count for i in listed] == [3, 2, 1]
    assert listed[0].title == "title 2" and listed[0].preview == "m0"
    assert [i.key for i in store.list("chat:")] == ["chat:2", "chat:1"]
    assert [i.key for i in store.list(limit=1, details=False)] == ["other:3"]
    cheap = store.list(details=False)
    assert [i.key for i in cheap] == ["other:3", "chat:2", "chat:1"]
    assert all(i.size and i.size > 0 and i.title is None for i in cheap)


def test_corrupt_session_is_refused_listed_and_repaired_with_a_backup(target: Target) -> None:
    store = target.open()
    store.save(record("k", 4, title="keep"))
    backend = store.backend
    path = backend.path("k")
    good = backend._read(path)
    lines = good.split(b"\n")
    bad = b"\n".join([lines[0], lines[1], b"42", b"{not json", *lines[2:]])
    backend.fs.pipe_file(path, bad)
    with pytest.raises(CorruptSessionError) as info:
        store.load("k")
    assert "line 3" in str(info.value)
    listed = store.list()
    assert [i.key for i in listed] == ["k"]
    report = store.repair("k", dry_run=True)
    assert not report.ok and not report.repaired and backend._read(path) == bad
    report = store.repair("k")
    assert report.repaired and report.messages_kept == 4 and report.lines_dropped == 2
    assert backend._read(report.backup) == bad  # the original bytes are kept
    assert [m["content"] for m in store.load("k").messages] == ["m0", "m1", "m2", "m3"]
    assert store.repair("k").ok
    assert [i.key for i in store.list()] == ["k"]  # the backup is not a session
    with pytest.raises(SessionNotFoundError):
        store.repair("missing")


def test_unserialisable_message_writes_nothing(target: Target) -> None:
    store = target.open()
    store.save(record("k"))
    before = store.load("k")
    broken = record("k")
    broken.messages = [{"role": "user", "content": object()}]
    with pytest.raises(SerializationError):
        store.save(broken, mode="overwrite")
    assert store.load("k").version == before.version


def test_temp_files_of_dead_local_writers_are_removed_on_open(tmp_path: Path) -> None:
    """A writer killed between its temp file and the rename leaves the temp file; the next
    open removes it when that writer was a process of this host that is gone."""
    from nanosession_fsspec.backend import _WRITER

    host = _WRITER.rpartition("-")[0]
    dead = tmp_path / f".x.jsonl.{host}-999999999.cafe.tmp"
    mine = tmp_path / f".x.jsonl.{_WRITER}.beef.tmp"
    foreign = tmp_path / ".x.jsonl.otherhost-1.f00d.tmp"
    for path in (dead, mine, foreign):
        path.write_bytes(b"partial")
    open_store(f"file://{tmp_path}", backend="fsspec").close()
    assert not dead.exists() and mine.exists() and foreign.exists()


def test_large_files_nanobot_wrote_are_listed_from_their_head(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = target.open()
    backend = store.backend
    meta = ('{"_type": "metadata", "key": "nb:long", "created_at": "2026-03-01T12:00:00", '
            '"updated_at": "2026-03-02T12:00:00", "metadata": {"title": "nanobot"}}')
    body = "\n".join([meta, '{"role": "user", "content": "from nanobot"}',
                      *('{"role": "assistant", "content": "%s"}' % ("y" * 1000)
                        for _ in range(100))]) + "\n"
    backend.fs.pipe_file(f"{backend.root}/{storage_name('nb:long')}.jsonl", body.encode())
    ranges: list[tuple[int, int]] = []
    real = type(backend)._read_range

    def counted(self: object, path: str, start: int, end: int) -> bytes:
        ranges.append((start, end))
        return real(self, path, start, end)  # type: ignore[arg-type]

    monkeypatch.setattr(type(backend), "_read_range", counted)
    backend.fs.invalidate_cache()
    (info,) = store.list(prefix="nb:")
    assert (info.title, info.preview, info.updated_at) == (
        "nanobot", "from nanobot", datetime(2026, 3, 2, 12, 0))
    assert ranges == [(0, 16384)]  # the head alone
