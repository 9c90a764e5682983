"""A gate wrapper around a real backend: holds saves in their thread on demand.

Ordering and cancellation tests need a write that is provably *in flight* (running in its
thread) while the test acts; the gate makes that deterministic without sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from typing import Any

from nanosession import SessionRecord, hookimpl


class Gate:
    """Wrapper plugin: logs every save, holds it while closed, tracks overlap per key."""

    def __init__(self) -> None:
        self.saves: list[tuple[str, Any]] = []  # (key, record.metadata.get("n"))
        self.max_active: dict[str, int] = {}
        self.max_total = 0
        self._active: dict[str, int] = {}
        self._open = threading.Event()
        self._open.set()
        self._after = False
        self._entered = threading.Semaphore(0)
        self._mu = threading.Lock()

    def close(self, *, after_write: bool = False) -> None:
        """Hold saves before the backend runs, or (``after_write``) once it has written."""
        self._after = after_write
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def entered(self, count: int = 1) -> None:
        """Wait (without blocking the loop) until ``count`` more saves reached the gate."""
        for _ in range(count):
            got = await asyncio.to_thread(self._entered.acquire, True, 10)
            assert got, "no save reached the gate"

    def _hold(self) -> None:
        self._entered.release()
        assert self._open.wait(10), "gate never opened"

    @hookimpl(wrapper=True)
    def nanosession_save(self, record: SessionRecord) -> Generator[None, Any, Any]:
        key = record.key
        with self._mu:
            self.saves.append((key, record.metadata.get("n")))
            self._active[key] = self._active.get(key, 0) + 1
            self.max_active[key] = max(self.max_active.get(key, 0), self._active[key])
            self.max_total = max(self.max_total, sum(self._active.values()))
        try:
            if self._after:
                result = yield
                self._hold()
                return result
            self._hold()
            return (yield)
        finally:
            with self._mu:
                self._active[key] -= 1
