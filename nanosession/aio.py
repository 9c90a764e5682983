"""Async API: ``AsyncStore`` and ``AsyncSessionManager``, which never block the event loop.

Every storage call runs in a small thread pool owned by the async object, so a 2 MB save
costs the loop a hand-off instead of a stall. Operations on one session key run one at a
time, in the order they were issued (a FIFO ``asyncio.Lock`` per key); different keys run
concurrently. A write handed to a thread always runs to completion: cancelling the task
that awaits it only stops the wait, and the key stays locked until the write ends, so a
later operation never overlaps it and the session's saved state stays exact. A task
cancelled while still waiting for its turn never starts its write.
"""

from __future__ import annotations

import asyncio
import copy
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from loguru import logger

from nanosession.errors import (
    ConfigurationError,
    NanosessionError,
    SerializationError,
    StorageError,
)
from nanosession.keys import validate_key
from nanosession.manager import (
    ListingEntries,
    OnCorrupt,
    load_or_repair,
    record_of,
    remember,
    session_from_record,
)
from nanosession.record import (
    Capabilities,
    PutMode,
    RepairReport,
    SessionInfo,
    SessionRecord,
    Update,
)
from nanosession.session import Session
from nanosession.store import Store, WrapperSpec, open_store
from nanosession.tracking import MessageLog

T = TypeVar("T")
DEFAULT_WORKERS = 8
Start = Callable[[], Callable[[], T]]
Settle = Callable[[Any, BaseException | None], None]


class _KeyLocks:
    """FIFO locks per key, created on demand and dropped once nobody holds or awaits them."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    async def acquire(self, key: str) -> None:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._users[key] = self._users.get(key, 0) + 1
        try:
            await lock.acquire()
        except BaseException:  # cancelled while waiting: the lock is not ours
            self._drop(key)
            raise

    def release(self, key: str) -> None:
        self._locks[key].release()
        self._drop(key)

    def _drop(self, key: str) -> None:
        users = self._users[key] - 1
        if users:
            self._users[key] = users
        else:
            del self._users[key], self._locks[key]


def _report_orphan(key: str, task: asyncio.Task[Any]) -> None:
    """A write whose caller stopped waiting: its failure would otherwise go unseen."""
    if not task.cancelled() and task.exception() is not None:
        logger.warning("operation on session {} failed after its caller was cancelled: {}",
                       key[:80], task.exception())


class AsyncStore:
    """``Store`` for asyncio code: the same operations, awaited, run in a thread pool.

    ``max_workers`` bounds how many storage calls run at once (across keys). The store is
    closed with ``aclose()`` (or ``async with``) when ``owns_store`` is true. Call it from
    one event loop at a time (its ordering locks are asyncio locks, not thread locks).
    """

    def __init__(
        self, store: Store, *, max_workers: int = DEFAULT_WORKERS, owns_store: bool = True
    ) -> None:
        if max_workers < 1:
            raise ConfigurationError("max_workers must be at least 1")
        self.store = store
        self._owns_store = owns_store
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="nanosession")
        self._locks = _KeyLocks()
        self._inflight: set[asyncio.Future[Any]] = set()
        self._closed = False

    @property
    def capabilities(self) -> Capabilities:
        """What the backend guarantees (see ``Capabilities``)."""
        return self.store.capabilities

    def __repr__(self) -> str:
        return f"<AsyncStore {self.store.backend_name} {self.store.url!r}>"

    # -- operations ---------------------------------------------------------------
    async def load(self, key: str) -> SessionRecord:
        """The stored session; ``SessionNotFoundError`` if absent."""
        key = validate_key(key)
        return await self._in_order(key, lambda: partial(self.store.load, key))

    async def get(self, key: str) -> SessionRecord | None:
        """Like ``load`` but ``None`` when the session does not exist."""
        key = validate_key(key)
        return await self._in_order(key, lambda: partial(self.store.get, key))

    async def save(
        self,
        record: SessionRecord,
        *,
        mode: PutMode | None = None,
        unchanged: int = 0,
        durable: bool = False,
    ) -> str:
        """``Store.save`` off the loop; do not change ``record`` until this returns.

        The default ``mode`` is read from ``record.version`` when the save's turn comes,
        so two saves of one record issued back to back chain their versions correctly.
        """
        key = validate_key(record.key)
        call = partial(self.store.save, record, mode=mode, unchanged=unchanged, durable=durable)
        return await self._in_order(key, lambda: call)

    async def delete(self, key: str, *, version: str | None = None) -> bool:
        """Delete a session; with ``version``, only if it is still that version."""
        key = validate_key(key)
        return await self._in_order(key, lambda: partial(self.store.delete, key, version=version))

    async def list(
        self, prefix: str = "", *, limit: int | None = None, details: bool = True
    ) -> list[SessionInfo]:
        """Sessions newest first (not ordered against writes still in flight)."""
        self._check_open()
        loop = asyncio.get_running_loop()
        call = partial(self.store.list, prefix, limit=limit, details=details)
        return await loop.run_in_executor(self._pool, call)

    async def repair(self, key: str, *, dry_run: bool = False) -> RepairReport:
        """Report and fix corruption of one session, keeping the original."""
        key = validate_key(key)
        return await self._in_order(key, lambda: partial(self.store.repair, key, dry_run=dry_run))

    async def aclose(self) -> None:
        """Wait for writes in flight, stop the threads, close the store if owned. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- machinery ----------------------------------------------------------------------
    def _shutdown(self) -> None:
        self._pool.shutdown(wait=True)
        if self._owns_store:
            self.store.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"{self!r} is closed")

    async def _in_order(self, key: str, start: Start[T], settle: Settle | None = None) -> T:
        """Run a storage call for ``key`` after every call issued before it for that key.

        ``start`` runs on the loop once it is this call's turn and returns the function
        for the thread; ``settle(result, error)`` runs on the loop when that function has
        ended, even if the caller was cancelled meanwhile.
        """
        await self._locks.acquire(key)
        try:
            self._check_open()
            task = asyncio.ensure_future(self._run_then_release(key, start, settle))
        except BaseException:
            self._locks.release(key)
            raise
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(partial(_report_orphan, key))
            raise

    async def _run_then_release(self, key: str, start: Start[T], settle: Settle | None) -> T:
        try:
            future = asyncio.get_running_loop().run_in_executor(self._pool, start())
            interrupted = await _outlast(future)
            error = future.exception()
            if settle is not None:
                settle(None if error else future.result(), error)
            if interrupted:
                raise asyncio.CancelledError
            return future.result()
        finally:
            self._locks.release(key)


async def _outlast(future: asyncio.Future[Any]) -> bool:
    """Wait until ``future`` is done even through cancellation; True if one was swallowed.

    The inner task is only cancelled when the loop shuts down (callers are shielded from
    it); the thread keeps writing then, so waiting keeps the bookkeeping exact.
    """
    interrupted = False
    while not future.done():
        try:
            await asyncio.wait((future,))
        except asyncio.CancelledError:
            interrupted = True
    return interrupted


def open_async_store(
    url: str,
    *,
    max_workers: int = DEFAULT_WORKERS,
    wrappers: tuple[WrapperSpec, ...] | list[WrapperSpec] = (),
    backend: str | None = None,
    **options: Any,
) -> AsyncStore:
    """``open_store`` for asyncio code; the ``AsyncStore`` owns and closes the store."""
    store = open_store(url, wrappers=wrappers, backend=backend, **options)
    return AsyncStore(store, max_workers=max_workers)


def _rewrite_next(log: MessageLog, tag: str | None) -> None:
    """Make the next save a full rewrite conditional on ``tag`` (nothing counts as stored)."""
    baseline = MessageLog()
    baseline.mark_saved(tag)
    log.inherit(baseline)


class _SaveJob:
    """One manager save: snapshot on the loop, write in a thread, bookkeeping on the loop.

    The snapshot is cheap (a shallow copy of the message list; the message dicts are
    shared, and restored ones are not adopted just to be written). Marking the log saved
    *before* the write makes any edit made while the write runs set ``dirty``; such a
    session (or one that got new messages meanwhile) is rewritten in full by its next
    save, so nothing changed during a write is ever lost.
    """

    def __init__(self, store: Store, session: Session, extra: dict[str, Any], durable: bool):
        self.store = store
        self.session = session
        self.extra = extra
        self.durable = durable
        self.tag: str | None = None
        self.count = 0

    def start(self) -> Callable[[], str]:
        s = self.session
        log = s.messages
        self.tag = log.saved_tag
        self.count = len(log)
        try:
            metadata = copy.deepcopy(s.metadata)
        except Exception as exc:  # what cannot be copied cannot be JSON either
            raise SerializationError(f"session metadata cannot be copied: {exc}") from None
        record = replace(
            record_of(s, dict(self.extra)), messages=log.snapshot(), metadata=metadata
        )
        unchanged = log.unchanged_prefix(self.tag)
        mode: PutMode = Update(self.tag) if self.tag else "create"
        log.mark_saved(self.tag)
        return partial(self.store.save, record, mode=mode, unchanged=unchanged,
                       durable=self.durable)

    def settle(self, version: str | None, error: BaseException | None) -> None:
        log = self.session.messages
        if error is None and not log.dirty and len(log) == self.count:
            log.mark_saved(version)
        else:  # failed, or changed while writing: rewrite everything next time
            _rewrite_next(log, version if error is None else self.tag)


class AsyncSessionManager:
    """``SessionManager`` for asyncio code: nanobot's manager API, awaited.

    Saves never block the loop, keep their order per session and run concurrently across
    sessions. Like ``SessionManager``, a stale save raises ``ConflictError`` instead of
    overwriting what another manager or process stored.
    """

    def __init__(
        self,
        store: AsyncStore | Store,
        *,
        cache_size: int = 512,
        on_corrupt: OnCorrupt = "repair",
        owns_store: bool = False,
    ) -> None:
        if cache_size < 1:
            raise ConfigurationError("cache_size must be at least 1")
        self._closes_store = owns_store or not isinstance(store, AsyncStore)
        self.store = store if isinstance(store, AsyncStore) else AsyncStore(
            store, owns_store=owns_store
        )
        self.cache_size = cache_size
        self.on_corrupt = on_corrupt
        self._cache: OrderedDict[str, Session] = OrderedDict()
        self._extra: dict[str, dict[str, Any]] = {}
        self._entries = ListingEntries()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cache_size: int = 512,
        on_corrupt: OnCorrupt = "repair",
        max_workers: int = DEFAULT_WORKERS,
        **options: Any,
    ) -> AsyncSessionManager:
        """A manager over ``open_async_store(url, **options)``, closed with itself."""
        store = open_async_store(url, max_workers=max_workers, **options)
        return cls(store, cache_size=cache_size, on_corrupt=on_corrupt, owns_store=True)

    # -- nanobot API, awaited -----------------------------------------------------
    async def get_or_create(self, key: str) -> Session:
        """The cached session, else the stored one, else a new empty one."""
        key = validate_key(key)
        session = self._cache.get(key)
        if session is not None:
            self._cache.move_to_end(key)
            return session
        loaded, extra = await self.store._in_order(key, lambda: partial(self._read, key))
        cached = self._cache.get(key)
        if cached is not None:  # a concurrent call got here first: share one object
            return cached
        if extra:
            self._extra[key] = extra
        self._remember(key, loaded)
        return loaded

    async def save(self, session: Session, *, fsync: bool = False) -> None:
        """Persist ``session`` off the loop: an append when only messages were added.

        The session is cached at once and saved when the saves issued before it for the
        same key are done. Raises ``ConflictError`` when the stored copy changed since
        this session was loaded or saved.
        """
        key = validate_key(session.key)
        self._remember(key, session)
        job = _SaveJob(self.store.store, session, self._extra.get(key, {}), fsync)
        await self.store._in_order(key, job.start, job.settle)

    async def flush_all(self) -> int:
        """Save every cached session durably and concurrently; return how many were saved.

        One failure is logged and does not stop the rest (this runs at shutdown).
        """
        sessions = list(self._cache.values())
        results = await asyncio.gather(
            *(self.save(s, fsync=True) for s in sessions), return_exceptions=True
        )
        saved = 0
        unexpected: BaseException | None = None
        for session, result in zip(sessions, results, strict=True):
            if result is None:
                saved += 1
            elif isinstance(result, NanosessionError):
                logger.error("flush of session {} failed: {}", session.key[:80], result)
            else:
                unexpected = unexpected or result
        if unexpected is not None:
            raise unexpected
        return saved

    def invalidate(self, key: str) -> None:
        """Forget the cached copy; the next ``get_or_create`` reads the store again."""
        self._cache.pop(key, None)
        self._extra.pop(key, None)

    async def delete_session(self, key: str) -> bool:
        """Delete the stored session and the cached copy; ``False`` if it did not exist.

        When this manager holds a version of it, the delete is conditional on that version
        (read when the delete's turn comes, so it follows saves issued before it).
        """
        key = validate_key(key)
        cached = self._cache.pop(key, None)
        self._extra.pop(key, None)

        def start() -> Callable[[], bool]:
            version = cached.messages.saved_tag if cached is not None else None
            return partial(self.store.store.delete, key, version=version)

        return await self.store._in_order(key, start)

    async def read_session_file(self, key: str) -> dict[str, Any] | None:
        """The stored session as plain data, read fresh and not cached; ``None`` if absent."""
        record = await self.store.get(key)
        return None if record is None else record.as_dict()

    async def list_sessions(self) -> list[dict[str, Any]]:
        """Every stored session, newest ``updated_at`` first, as nanobot lists them."""
        return self._entries(await self.store.list(details=True))

    # -- lifecycle ---------------------------------------------------------------------
    async def aclose(self) -> None:
        """Wait for saves in flight; close the store if this manager owns it."""
        if self._closes_store:
            await self.store.aclose()

    async def __aenter__(self) -> AsyncSessionManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- internals --------------------------------------------------------------------
    def _read(self, key: str) -> tuple[Session, dict[str, Any]]:
        """In a thread: the stored session (repaired if asked) or a new one."""
        record = load_or_repair(self.store.store, key, self.on_corrupt)
        if record is None:
            return Session(key=key), {}
        return session_from_record(record), record.extra

    def _remember(self, key: str, session: Session) -> None:
        remember(self._cache, self._extra, key, session, self.cache_size)
