"""Fixtures for the async tests: a real local store with a gate wrapper (see aio_gate)."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from pathlib import Path

import pytest
from aio_gate import Gate

from nanosession import open_store
from nanosession.aio import AsyncStore


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def astore(tmp_path: Path, gate: Gate) -> Generator[AsyncStore, None, None]:
    store = AsyncStore(open_store(str(tmp_path / "s"), wrappers=[gate]), max_workers=8)
    yield store
    gate.open()
    asyncio.run(store.aclose())
