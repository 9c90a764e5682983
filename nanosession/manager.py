"""``SessionManager``: nanobot's session manager API over any ``Store``.

It is the one place where the domain (``Session``) meets storage (``SessionRecord``): it
converts between them, remembers through each session's ``MessageLog`` which stored
version its messages were saved as, and so saves by appending when only new messages came
and never overwrites a copy another manager or process changed meanwhile.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Literal

from loguru import logger

from nanosession.errors import CorruptSessionError, NanosessionError
from nanosession.record import SessionInfo, SessionRecord, Update
from nanosession.session import Session
from nanosession.store import Store, open_store

OnCorrupt = Literal["repair", "raise"]


def session_from_record(record: SessionRecord) -> Session:
    """The domain object for a stored record, its messages marked saved at its version."""
    session = Session(
        key=record.key,
        metadata=record.metadata,
        created_at=record.created_at,
        updated_at=record.updated_at,
        last_consolidated=record.last_consolidated,
    )
    session.messages.restore(record.messages, record.version)
    return session


def record_of(session: Session, extra: dict[str, Any]) -> SessionRecord:
    """The record that stores ``session`` (its message log itself, not a copy)."""
    return SessionRecord(
        key=session.key,
        messages=session.messages,
        metadata=session.metadata,
        created_at=session.created_at,
        updated_at=session.updated_at,
        last_consolidated=session.last_consolidated,
        extra=extra,
    )


def load_or_repair(store: Store, key: str, on_corrupt: OnCorrupt) -> SessionRecord | None:
    """``store.get(key)``; a corrupt session is repaired first when ``on_corrupt`` says so
    (data written through a missing wrapper is never "repaired": it is not corrupt)."""
    try:
        return store.get(key)
    except CorruptSessionError as exc:
        if on_corrupt != "repair" or type(exc) is not CorruptSessionError:
            raise
        report = store.repair(key)
        logger.warning(
            "session {} was corrupt ({}); repaired keeping {} messages, original at {}",
            key[:80], "; ".join(report.problems[:3]), report.messages_kept, report.backup,
        )
        return store.get(key)


def remember(
    cache: OrderedDict[str, Session],
    extras: dict[str, dict[str, Any]],
    key: str,
    session: Session,
    size: int,
) -> None:
    """Cache ``session`` as most recent and evict the oldest beyond ``size``, except those
    with unsaved messages (so ``flush_all`` still sees them)."""
    cache[key] = session
    cache.move_to_end(key)
    if len(cache) <= size:  # the common case on every save: no key list to build
        return
    for old_key in list(cache)[: len(cache) - size]:
        log = cache[old_key].messages
        if log.dirty or len(log) != log.saved_count:
            continue
        del cache[old_key]
        extras.pop(old_key, None)


def listing_entry(info: SessionInfo) -> dict[str, Any]:
    """A listing entry in the shape nanobot's ``list_sessions`` returns."""
    return {
        "key": info.key,
        "created_at": info.created_at.isoformat() if info.created_at else None,
        "updated_at": info.updated_at.isoformat() if info.updated_at else None,
        "title": info.title or "",
        "preview": info.preview or "",
        "path": info.location,
    }


class ListingEntries:
    """``listing_entry`` for a whole listing, remembering what it built.

    Backends that keep their listing between calls return the same ``SessionInfo``
    objects for unchanged sessions, so the entry built for each is kept (by identity) and
    only copied: callers still get new dicts, and an agent listing 10,000 sessions once a
    second does not format 20,000 timestamps every time.
    """

    def __init__(self) -> None:
        self._built: dict[int, tuple[SessionInfo, dict[str, Any]]] = {}

    def __call__(self, infos: list[SessionInfo]) -> list[dict[str, Any]]:
        built = self._built
        kept: dict[int, tuple[SessionInfo, dict[str, Any]]] = {}
        out = []
        for info in infos:
            hit = built.get(id(info))
            if hit is None or hit[0] is not info:  # ids are reused once an object is gone
                hit = (info, listing_entry(info))
            kept[id(info)] = hit
            out.append(hit[1].copy())
        self._built = kept  # one assignment: concurrent listings each see a whole cache
        return out


class SessionManager:
    """Sessions by key, cached (bounded LRU) and saved through a ``Store``.

    Method names and return shapes follow nanobot v0.2.0's ``SessionManager``, so code
    written for nanobot switches by changing an import. Unlike nanobot's, two managers on
    one store never silently overwrite each other: a stale save raises ``ConflictError``.
    """

    def __init__(
        self,
        store: Store,
        *,
        cache_size: int = 512,
        on_corrupt: OnCorrupt = "repair",
        owns_store: bool = False,
    ) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.store = store
        self.cache_size = cache_size
        self.on_corrupt = on_corrupt
        self._owns_store = owns_store
        self._cache: OrderedDict[str, Session] = OrderedDict()
        self._extra: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._entries = ListingEntries()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cache_size: int = 512,
        on_corrupt: OnCorrupt = "repair",
        **options: Any,
    ) -> SessionManager:
        """A manager over ``open_store(url, **options)``, closing the store with itself."""
        return cls(open_store(url, **options), cache_size=cache_size, on_corrupt=on_corrupt,
                   owns_store=True)

    # -- nanobot v0.2.0 API -------------------------------------------------------
    def get_or_create(self, key: str) -> Session:
        """The cached session, else the stored one, else a new empty one."""
        with self._lock:
            session = self._cache.get(key)
            if session is not None:
                self._cache.move_to_end(key)
                return session
        record = load_or_repair(self.store, key, self.on_corrupt)
        session = session_from_record(record) if record is not None else Session(key=key)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:  # another thread loaded it first: share one object
                return cached
            if record is not None and record.extra:
                self._extra[key] = record.extra
            self._remember(key, session)
        return session

    def save(self, session: Session, *, fsync: bool = False) -> None:
        """Persist ``session``: an append when only messages were added, else a rewrite.

        Raises ``ConflictError`` when the stored copy changed since this session was loaded
        or saved (or, for a new session, when one with its key appeared meanwhile).
        """
        log = session.messages
        tag = log.saved_tag
        record = record_of(session, self._extra.get(session.key, {}))
        version = self.store.save(
            record,
            mode=Update(tag) if tag else "create",
            unchanged=log.unchanged_prefix(tag),
            durable=fsync,
        )
        log.mark_saved(version)
        with self._lock:
            self._remember(session.key, session)

    def flush_all(self) -> int:
        """Save every cached session durably; return how many were saved.

        One failure is logged and does not stop the rest (this runs at shutdown).
        """
        with self._lock:
            sessions = list(self._cache.values())
        saved = 0
        for session in sessions:
            try:
                self.save(session, fsync=True)
                saved += 1
            except NanosessionError as exc:
                logger.error("flush of session {} failed: {}", session.key[:80], exc)
        return saved

    def invalidate(self, key: str) -> None:
        """Forget the cached copy; the next ``get_or_create`` reads the store again."""
        with self._lock:
            self._cache.pop(key, None)
            self._extra.pop(key, None)

    def delete_session(self, key: str) -> bool:
        """Delete the stored session and the cached copy; ``False`` if it did not exist.

        When this manager holds a version of it, the delete is conditional on that version
        (``ConflictError`` if another writer changed it meanwhile).
        """
        with self._lock:
            cached = self._cache.pop(key, None)
            self._extra.pop(key, None)
        version = cached.messages.saved_tag if cached is not None else None
        return self.store.delete(key, version=version)

    def read_session_file(self, key: str) -> dict[str, Any] | None:
        """The stored session as plain data, read fresh and not cached; ``None`` if absent."""
        record = self.store.get(key)
        return None if record is None else record.as_dict()

    def list_sessions(self) -> list[dict[str, Any]]:
        """Every stored session, newest ``updated_at`` first, as nanobot lists them."""
        return self._entries(self.store.list(details=True))

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        """Close the store if this manager opened it."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------
    def _remember(self, key: str, session: Session) -> None:
        remember(self._cache, self._extra, key, session, self.cache_size)
