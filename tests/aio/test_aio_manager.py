"""AsyncSessionManager: nanobot's manager API awaited; cancellation never loses a message."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from aio_gate import Gate

from nanosession import (
    ConflictError,
    EncodedDataError,
    SerializationError,
    Session,
    SessionManager,
    open_store,
)
from nanosession.aio import AsyncSessionManager, AsyncStore
from nanosession.keys import storage_name

pytestmark = pytest.mark.timeout(60)


def stored_lines(root: Path, key: str) -> list[dict]:
    path = root / (storage_name(key) + ".jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def gated(root: Path, gate: Gate) -> AsyncSessionManager:
    return AsyncSessionManager(open_store(str(root), wrappers=[gate]), owns_store=True)


def test_round_trip_and_appends(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncSessionManager.from_url(str(tmp_path)) as m:
            s = await m.get_or_create("telegram:1")
            assert await m.get_or_create("telegram:1") is s
            for i in range(30):
                s.add_message("tool", "r" * 300, tool_call_id=str(i))
            s.metadata["title"] = "Tools"
            await m.save(s)
            path = tmp_path / (storage_name("telegram:1") + ".jsonl")
            ino, size = path.stat().st_ino, path.stat().st_size
            s.add_message("user", "one more")
            await m.save(s)
            assert path.stat().st_ino == ino and path.stat().st_size - size < 400  # appended
            listed = await m.list_sessions()
            assert [(e["key"], e["title"]) for e in listed] == [("telegram:1", "Tools")]
            raw = await m.read_session_file("telegram:1")
            assert raw is not None and len(raw["messages"]) == 31
        again = SessionManager.from_url(str(tmp_path)).get_or_create("telegram:1")
        assert list(again.messages) == list(s.messages) and again.metadata == {"title": "Tools"}

    asyncio.run(main())


def test_back_to_back_saves_chain_versions(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncSessionManager.from_url(str(tmp_path)) as m:
            s = await m.get_or_create("k")
            saves = []
            for i in range(10):  # issue every save without awaiting the previous one
                s.add_message("user", f"m{i}")
                saves.append(asyncio.create_task(m.save(s)))
                await asyncio.sleep(0)  # let it start: later messages arrive mid-write
            await asyncio.gather(*saves)  # no ConflictError: each used the last version
            s.add_message("user", "last")
            await m.save(s)
        lines = stored_lines(tmp_path, "k")
        assert [x["content"] for x in lines if "role" in x] == [f"m{i}" for i in range(10)] + [
            "last"
        ]

    asyncio.run(main())


def test_cancelled_save_completes_and_nothing_added_meanwhile_is_lost(
    tmp_path: Path, gate: Gate
) -> None:
    async def main() -> None:
        m = gated(tmp_path, gate)
        s = await m.get_or_create("k")
        s.add_message("user", "before")
        await m.save(s)
        s.add_message("assistant", "in flight")
        gate.close()
        save = asyncio.create_task(m.save(s))
        await gate.entered()
        save.cancel()
        with pytest.raises(asyncio.CancelledError):
            await save
        # the caller moves on while the write is still running in its thread
        s.add_message("user", "after cancel")
        s.messages[0]["content"] = "edited while writing"
        gate.open()
        snapshot = await m.read_session_file("k")  # queued behind the running write
        assert snapshot is not None
        assert [x["content"] for x in snapshot["messages"]] == ["before", "in flight"]
        await m.save(s)  # no ConflictError: the cancelled save's version was kept
        await m.aclose()
        stored = SessionManager.from_url(str(tmp_path)).get_or_create("k")
        assert [x["content"] for x in stored.messages] == [
            "edited while writing", "in flight", "after cancel"
        ]

    asyncio.run(main())


def test_edit_of_a_message_being_written_reaches_the_next_save(
    tmp_path: Path, gate: Gate
) -> None:
    async def main() -> None:
        m = gated(tmp_path, gate)
        s = await m.get_or_create("k")
        s.add_message("user", "draft")
        gate.close(after_write=True)
        save = asyncio.create_task(m.save(s))
        await gate.entered()  # "draft" is stored; the save has not returned yet
        s.messages[0]["content"] = "final"  # same length, edited after it was written
        gate.open()
        await save
        await m.save(s)
        await m.aclose()
        assert [x["content"] for x in stored_lines(tmp_path, "k") if "role" in x] == ["final"]

    asyncio.run(main())


def test_a_write_outlasting_its_event_loop_still_records_its_version(
    tmp_path: Path, gate: Gate
) -> None:
    m = gated(tmp_path, gate)
    s = Session(key="k")
    s.add_message("user", "x")

    async def main() -> None:
        gate.close(after_write=True)
        save = asyncio.create_task(m.save(s))  # asyncio.run cancels it on the way out
        await gate.entered()
        assert not save.done()
        threading.Timer(0.2, gate.open).start()

    asyncio.run(main())
    with open_store(str(tmp_path)) as raw:
        assert s.messages.saved_tag == raw.load("k").version
    asyncio.run(m.aclose())


def test_save_cancelled_before_its_turn_writes_nothing(tmp_path: Path, gate: Gate) -> None:
    async def main() -> None:
        m = gated(tmp_path, gate)
        a = await m.get_or_create("k")
        a.add_message("user", "one")
        gate.close()
        first = asyncio.create_task(m.save(a))
        await gate.entered()
        a.add_message("user", "two")
        second = asyncio.create_task(m.save(a))
        await asyncio.sleep(0.02)
        second.cancel()
        gate.open()
        await first
        with pytest.raises(asyncio.CancelledError):
            await second
        assert len(gate.saves) == 1
        await m.save(a)  # the unsaved message goes out with the next save
        await m.aclose()
        assert [x["content"] for x in stored_lines(tmp_path, "k") if "role" in x] == [
            "one", "two"
        ]

    asyncio.run(main())


def test_failed_save_leaves_the_stored_copy_and_the_next_save_works(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncSessionManager.from_url(str(tmp_path)) as m:
            s = await m.get_or_create("k")
            s.add_message("user", "kept")
            await m.save(s)
            s.add_message("user", {1, 2})  # a set is not JSON
            with pytest.raises(SerializationError):
                await m.save(s)
            assert [x["content"] for x in stored_lines(tmp_path, "k") if "role" in x] == ["kept"]
            s.messages[-1]["content"] = "fixed"
            await m.save(s)
        assert [x["content"] for x in stored_lines(tmp_path, "k") if "role" in x] == [
            "kept", "fixed"
        ]

    asyncio.run(main())


def test_sessions_save_concurrently_and_flush_all_survives_one_failure(
    tmp_path: Path, gate: Gate
) -> None:
    async def main() -> None:
        m = gated(tmp_path, gate)
        sessions = [await m.get_or_create(f"chat:{i}") for i in range(4)]
        for s in sessions:
            s.add_message("user", f"hello {s.key}")
        gate.close()
        flush = asyncio.create_task(m.flush_all())
        await gate.entered(4)  # the four writes are in flight together
        gate.open()
        assert await flush == 4
        other = SessionManager.from_url(str(tmp_path))
        theirs = other.get_or_create("chat:0")
        theirs.add_message("assistant", "from another process")
        other.save(theirs)
        for s in sessions:
            s.add_message("user", "second")
        assert await m.flush_all() == 3  # chat:0 is stale: logged, the rest still saved
        with pytest.raises(ConflictError):
            await m.save(sessions[0])
        await m.aclose()
        assert len(stored_lines(tmp_path, "chat:3")) == 4  # metadata, hello, meta, second

    asyncio.run(main())


def test_delete_follows_the_save_issued_before_it(tmp_path: Path, gate: Gate) -> None:
    async def main() -> None:
        m = gated(tmp_path, gate)
        s = await m.get_or_create("k")
        s.add_message("user", "x")
        await m.save(s)
        s.add_message("user", "y")
        gate.close()
        save = asyncio.create_task(m.save(s))
        await gate.entered()
        delete = asyncio.create_task(m.delete_session("k"))
        gate.open()
        await save
        assert await delete is True  # conditional on the version the save produced
        assert await m.list_sessions() == []
        assert await m.delete_session("k") is False
        await m.aclose()

    asyncio.run(main())


def test_concurrent_get_or_create_shares_one_session(tmp_path: Path) -> None:
    async def main() -> None:
        SessionManager.from_url(str(tmp_path)).save(_seeded("k"))
        async with AsyncSessionManager.from_url(str(tmp_path)) as m:
            got = await asyncio.gather(*(m.get_or_create("k") for _ in range(5)))
            assert all(g is got[0] for g in got) and len(got[0].messages) == 1
            m.invalidate("k")
            assert await m.get_or_create("k") is not got[0]

    asyncio.run(main())


def test_corrupt_session_is_repaired_on_load(tmp_path: Path) -> None:
    async def main() -> None:
        SessionManager.from_url(str(tmp_path)).save(_seeded("k"))
        path = tmp_path / (storage_name("k") + ".jsonl")
        path.write_bytes(path.read_bytes() + b"42\n")
        async with AsyncSessionManager(AsyncStore(open_store(str(tmp_path)))) as m:
            s = await m.get_or_create("k")
            assert [x["content"] for x in s.messages] == ["seed"]
        assert list(tmp_path.glob("*.corrupt-*"))  # original kept beside the repaired file

    asyncio.run(main())


def _seeded(key: str) -> Session:
    s = Session(key=key)
    s.add_message("user", "seed")
    return s


def test_wrappers_apply_to_async_saves_and_loads(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncSessionManager.from_url(str(tmp_path), wrappers=["zlib"]) as m:
            s = await m.get_or_create("k")
            s.add_message("tool", "compress me " * 2000, tool_call_id="1")
            await m.save(s)
        async with AsyncSessionManager.from_url(str(tmp_path), wrappers=["zlib"]) as m:
            again = await m.get_or_create("k")
            assert again.messages[0]["content"] == "compress me " * 2000
        async with AsyncSessionManager.from_url(str(tmp_path)) as plain:
            with pytest.raises(EncodedDataError):  # never garbage, never an empty session
                await plain.get_or_create("k")

    asyncio.run(main())
