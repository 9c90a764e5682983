"""AsyncStore: per-key ordering, concurrency across keys, cancellation, lifecycle."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aio_gate import Gate

from nanosession import (
    ConflictError,
    InvalidKeyError,
    SessionNotFoundError,
    SessionRecord,
    StorageError,
)
from nanosession.aio import AsyncStore, open_async_store

pytestmark = pytest.mark.timeout(60)


def rec(key: str, n: int) -> SessionRecord:
    return SessionRecord(key=key, messages=[{"role": "user", "content": f"m{n}"}],
                         metadata={"n": n})


def test_saves_of_one_key_land_in_the_order_issued(astore: AsyncStore, gate: Gate) -> None:
    async def main() -> None:
        gate.close()
        first = asyncio.create_task(astore.save(rec("k", 0), mode="overwrite"))
        await gate.entered()  # save 0 is in its thread; the rest must queue behind it
        rest = [asyncio.create_task(astore.save(rec("k", n), mode="overwrite"))
                for n in range(1, 8)]
        await asyncio.sleep(0.05)
        assert gate.saves == [("k", 0)]  # nothing overtook the held write
        gate.open()
        await asyncio.gather(first, *rest)
        assert [n for _, n in gate.saves] == list(range(8))
        assert gate.max_active["k"] == 1
        assert (await astore.load("k")).metadata == {"n": 7}

    asyncio.run(main())


def test_a_load_issued_after_a_save_sees_it(astore: AsyncStore, gate: Gate) -> None:
    async def main() -> None:
        record = rec("k", 1)
        gate.close()
        save = asyncio.create_task(astore.save(record))
        await gate.entered()
        load = asyncio.create_task(astore.get("k"))
        await asyncio.sleep(0.05)
        assert not load.done()  # waits for the write, does not read around it
        gate.open()
        version = await save
        loaded = await load
        assert loaded is not None and loaded.version == version == record.version

    asyncio.run(main())


def test_different_keys_are_written_concurrently(astore: AsyncStore, gate: Gate) -> None:
    async def main() -> None:
        gate.close()
        saves = [asyncio.create_task(astore.save(rec(f"k{i}", i))) for i in range(4)]
        await gate.entered(4)  # all four are inside the backend at the same time
        assert gate.max_total == 4
        gate.open()
        await asyncio.gather(*saves)
        listed = await astore.list()
        assert sorted(i.key for i in listed) == ["k0", "k1", "k2", "k3"]

    asyncio.run(main())


def test_cancelled_while_waiting_never_writes(astore: AsyncStore, gate: Gate) -> None:
    async def main() -> None:
        gate.close()
        first = asyncio.create_task(astore.save(rec("k", 1), mode="overwrite"))
        await gate.entered()
        waiting = asyncio.create_task(astore.save(rec("k", 2), mode="overwrite"))
        await asyncio.sleep(0.02)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.open()
        await first
        assert gate.saves == [("k", 1)]
        assert (await astore.load("k")).metadata == {"n": 1}
        assert astore._locks._locks == {}  # no lock left behind for the key

    asyncio.run(main())


def test_cancelled_in_flight_write_completes_before_the_next_operation(
    astore: AsyncStore, gate: Gate
) -> None:
    async def main() -> None:
        await astore.save(rec("k", 1))
        record = await astore.load("k")
        record.metadata = {"n": 2}
        old_version = record.version
        gate.close()
        save = asyncio.create_task(astore.save(record))
        await gate.entered()
        save.cancel()
        with pytest.raises(asyncio.CancelledError):
            await save
        follow = asyncio.create_task(astore.get("k"))
        await asyncio.sleep(0.05)
        assert not follow.done()  # the key stays busy until the write really ends
        gate.open()
        loaded = await follow
        assert loaded is not None and loaded.metadata == {"n": 2}
        assert record.version == loaded.version != old_version
        record.metadata = {"n": 3}
        await astore.save(record)  # chains on the version the cancelled save produced
        assert (await astore.load("k")).metadata == {"n": 3}

    asyncio.run(main())


def test_errors_stay_typed(astore: AsyncStore) -> None:
    async def main() -> None:
        with pytest.raises(InvalidKeyError):
            await astore.load("")
        with pytest.raises(SessionNotFoundError):
            await astore.load("missing")
        await astore.save(rec("k", 1))
        with pytest.raises(ConflictError):
            await astore.save(rec("k", 2))  # no version: create, but it exists
        assert await astore.delete("k") is True
        assert await astore.delete("k") is False
        with pytest.raises(SessionNotFoundError):
            await astore.repair("k")

    asyncio.run(main())


def test_aclose_waits_for_writes_then_refuses_work(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_async_store(str(tmp_path))
        record = rec("k", 1)
        save = asyncio.create_task(store.save(record))
        await asyncio.sleep(0)
        await store.aclose()
        assert save.done() and record.version is not None
        with pytest.raises(StorageError, match="closed"):
            await store.load("k")
        with pytest.raises(StorageError, match="closed"):
            await store.list()
        await store.aclose()  # idempotent

    asyncio.run(main())

    async def reopen() -> None:
        async with open_async_store(str(tmp_path)) as again:
            assert (await again.load("k")).metadata == {"n": 1}

    asyncio.run(reopen())


def test_the_loop_keeps_running_while_a_write_is_held(astore: AsyncStore, gate: Gate) -> None:
    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        gate.close()
        save = asyncio.create_task(astore.save(rec("k", 1)))
        await gate.entered()
        clock = asyncio.create_task(ticker())
        for _ in range(5000):  # up to ~5 s on a loaded machine; 10 ticks is enough
            if ticks >= 10:
                break
            await asyncio.sleep(0.001)
        assert ticks >= 10 and not save.done()  # the loop ran while the write was held
        clock.cancel()
        gate.open()
        await save

    asyncio.run(main())
