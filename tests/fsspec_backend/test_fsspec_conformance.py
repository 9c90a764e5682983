"""The shared backend conformance suite on every protocol the fsspec backend is tested on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from nanosession import Store
from nanosession.testing import StoreTests

if TYPE_CHECKING:
    from conftest import Target


class TestFsspecConformance(StoreTests):
    """Parametrised over memory, local, FTP, WebDAV, SFTP and S3 (through s3fs)."""

    @pytest.fixture
    def store(self, target: Target) -> Iterator[Store]:
        with target.open() as store:
            yield store

    def raw_read(self, store: Store, key: str) -> bytes | None:
        return store.backend._read(store.backend.path(key))  # type: ignore[attr-defined]

    def raw_write(self, store: Store, key: str, data: bytes) -> None:
        backend = store.backend
        backend.fs.pipe_file(backend.path(key), data)  # type: ignore[attr-defined]

    def raw_names(self, store: Store) -> list[str]:
        fs, root = store.backend.fs, store.backend.root  # type: ignore[attr-defined]
        fs.invalidate_cache()
        try:
            paths = fs.ls(root, detail=False)
        except FileNotFoundError:  # an object store has no empty "directories"
            return []
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in paths]
