"""The async manager against S3 over real HTTP (moto's server on loopback)."""

from __future__ import annotations

import asyncio

import pytest

from nanosession import ConflictError
from nanosession.aio import AsyncSessionManager

pytestmark = pytest.mark.timeout(120)


def test_concurrent_sessions_on_s3(s3_bucket: str, moto_endpoint: str) -> None:
    url = f"s3://{s3_bucket}/agents"

    async def main() -> None:
        async with AsyncSessionManager.from_url(url, endpoint_url=moto_endpoint) as m:
            sessions = [await m.get_or_create(f"chat:{i}") for i in range(6)]
            for turn in range(3):
                for s in sessions:
                    s.add_message("user", f"{s.key} turn {turn}")
                await asyncio.gather(*(m.save(s) for s in sessions))
            assert sorted(e["key"] for e in await m.list_sessions()) == [
                f"chat:{i}" for i in range(6)
            ]
        async with AsyncSessionManager.from_url(url, endpoint_url=moto_endpoint) as fresh:
            for i in range(6):
                s = await fresh.get_or_create(f"chat:{i}")
                assert [x["content"] for x in s.messages] == [
                    f"chat:{i} turn {t}" for t in range(3)
                ]
            stale = sessions[0]
            mine = await fresh.get_or_create("chat:0")
            mine.add_message("assistant", "from the fresh manager")
            await fresh.save(mine)
            stale.add_message("user", "from the old manager")
            async with AsyncSessionManager.from_url(url, endpoint_url=moto_endpoint) as old:
                with pytest.raises(ConflictError):
                    await old.save(stale)  # its version is older than what S3 holds
            assert await fresh.delete_session("chat:0") is True

    asyncio.run(main())
