"""nanobot integration: nanobot's own ``SessionManager`` on any nanosession store.

``NanobotSessionStore`` implements the ``SessionStore`` protocol of ``nanobot-ai`` 0.3
(``load``, ``save``, ``delete``, ``read``, ``read_metadata``, ``update_metadata``,
``list_sessions``), so ``SessionManager(workspace, store=NanobotSessionStore.from_url(
"s3://bucket/sessions"))`` keeps nanobot's sessions in S3 or any other backend::

    from nanobot.session.manager import SessionManager
    from nanosession.integrations.nanobot import NanobotSessionStore

    store = NanobotSessionStore.from_url("s3://my-bucket/nanobot/sessions")
    sessions = SessionManager(workspace, store=store)

nanobot's manager has no notion of versions, so the adapter keeps one per ``Session``
object it loaded or saved and makes every save conditional on it. When another process
changed the stored session meanwhile, ``save`` raises ``ConflictError`` (the default,
``on_conflict="raise"``: nothing is overwritten) or, with ``on_conflict="overwrite"``,
logs a warning and writes anyway (nanobot's own last-writer-wins behaviour).

nanobot is imported only when an adapter is created: nanosession never depends on it.
"""

from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger

from nanosession.errors import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    CorruptSessionError,
)
from nanosession.jsonl import TYPED_LINES
from nanosession.record import PutMode, SessionInfo, SessionRecord, Update
from nanosession.store import Store, open_store

if TYPE_CHECKING:
    from nanobot.session.manager import Session as NanobotSession
    from nanobot.session.manager import (
        SessionInfo as NanobotSessionInfo,
    )
    from nanobot.session.manager import (
        SessionMetadataPayload,
        SessionPayload,
    )

OnConflict = Literal["raise", "overwrite"]
PROVIDER_STATE = "provider_state"
METADATA_RETRIES = 5


@dataclass
class _Seen:
    """What one live nanobot ``Session`` object was last loaded or saved as."""

    ref: weakref.ref[Any]
    key: str
    version: str | None
    extra: dict[str, Any]


def _nanobot() -> tuple[type[NanobotSession], Any]:
    try:
        from nanobot.providers.base import ProviderConversationState
        from nanobot.session.manager import Session
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the nanobot integration needs nanobot-ai 0.3 ({exc}); "
            "install it with: pip install 'nanosession[nanobot]'"
        ) from None
    return Session, ProviderConversationState


class NanobotSessionStore:
    """nanobot 0.3's ``SessionStore`` protocol over a nanosession ``Store``.

    Thread-safe. Corrupt sessions are repaired on read (the original bytes are kept by
    the backend), as nanobot's own JSONL store does.
    """

    def __init__(
        self, store: Store, *, on_conflict: OnConflict = "raise", owns_store: bool = False
    ) -> None:
        if on_conflict not in ("raise", "overwrite"):
            raise ConfigurationError(
                f"on_conflict must be 'raise' or 'overwrite', not {on_conflict!r}"
            )
        self._session_type, self._provider_state_type = _nanobot()
        self.store = store
        self.on_conflict = on_conflict
        self._owns_store = owns_store
        self._seen: dict[int, _Seen] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(
        cls, url: str, *, on_conflict: OnConflict = "raise", **options: Any
    ) -> NanobotSessionStore:
        """An adapter over ``open_store(url, **options)``, closing the store with itself."""
        _nanobot()  # before opening anything: a missing install leaks no store
        return cls(open_store(url, **options), on_conflict=on_conflict, owns_store=True)

    def close(self) -> None:
        """Close the store if this adapter opened it."""
        if self._owns_store:
            self.store.close()

    # -- the SessionStore protocol --------------------------------------------------
    def load(self, key: str) -> NanobotSession | None:
        """The stored session as a nanobot ``Session``, or ``None``."""
        record = self._get(key)
        if record is None:
            return None
        extra = dict(record.extra)
        state = None
        typed = []
        for line in extra.pop(TYPED_LINES, None) or []:
            if line.get("_type") == PROVIDER_STATE:
                state = self._provider_state_type.from_private_record(line.get("state"))
            else:
                typed.append(line)  # lines of other kinds round-trip untouched
        if typed:
            extra[TYPED_LINES] = typed
        session = self._session_type(
            key=key,
            messages=list(record.messages),
            created_at=record.created_at,
            updated_at=record.updated_at,
            metadata=record.metadata,
            last_consolidated=record.last_consolidated,
            provider_state=state,
        )
        self._remember(session, record.version, extra)
        return session

    def save(self, session: NanobotSession, *, fsync: bool = False) -> None:
        """Write the whole session, conditional on the version this object was read as."""
        seen = self._lookup(session)
        extra = dict(seen.extra) if seen else {}
        typed = list(extra.get(TYPED_LINES, []))
        if session.provider_state is not None:
            state = session.provider_state.to_private_record()
            typed.insert(0, {"_type": PROVIDER_STATE, "state": state})
        record = SessionRecord(
            key=session.key,
            messages=session.messages,
            metadata=session.metadata,
            created_at=session.created_at,
            updated_at=session.updated_at,
            last_consolidated=session.last_consolidated,
            extra={**extra, TYPED_LINES: typed} if typed else extra,
        )
        mode: PutMode = Update(seen.version) if seen and seen.version else "create"
        try:
            version = self.store.save(record, mode=mode, durable=fsync)
        except ConflictError:
            if self.on_conflict != "overwrite":
                raise
            logger.warning("session {} changed in storage meanwhile; overwriting it",
                           session.key[:80])
            version = self.store.save(record, mode="overwrite", durable=fsync)
        self._remember(session, version, extra)

    def delete(self, key: str) -> bool:
        """Delete the stored session; ``False`` if it did not exist."""
        deleted = self.store.delete(key)
        with self._lock:
            for seen in self._seen.values():
                if seen.key == key:
                    seen.version = None  # a later save of that object re-creates it
        return deleted

    def read(self, key: str) -> SessionPayload | None:
        """The stored session as plain data (not tracked, not cached)."""
        record = self._get(key)
        return None if record is None else record.as_dict()  # type: ignore[return-value]

    def read_metadata(self, key: str) -> SessionMetadataPayload | None:
        """The stored session's key, timestamps and metadata."""
        record = self._get(key)
        return None if record is None else record.as_dict(messages=False)  # type: ignore[return-value]

    def update_metadata(self, key: str, updates: dict[str, Any], *, fsync: bool = False) -> bool:
        """Merge ``updates`` into the stored metadata (compare-and-swap, retried on races).

        Live sessions that were in step with the stored copy stay in step (nanobot's
        manager applies the same updates to its cached session), so their next save does
        not conflict. ``False`` when the session does not exist.
        """
        for _ in range(METADATA_RETRIES):
            record = self._get(key)
            if record is None:
                return False
            before = record.version
            record.metadata = {**record.metadata, **copy.deepcopy(updates)}
            mode: PutMode = Update(before) if before else "overwrite"
            try:
                after = self.store.save(record, mode=mode, durable=fsync)
            except ConflictError:
                continue  # someone wrote in between: read again
            with self._lock:
                for seen in self._seen.values():
                    if seen.key == key and seen.version == before:
                        seen.version = after
            return True
        raise ConflictError(key, f"metadata update lost {METADATA_RETRIES} races in a row")

    def list_sessions(self) -> list[NanobotSessionInfo]:
        """Every stored session, newest first, in nanobot's listing shape."""
        return [_listing(info) for info in self.store.list(details=True)]

    # -- internals -------------------------------------------------------------------
    def _get(self, key: str) -> SessionRecord | None:
        try:
            return self.store.get(key)
        except CorruptSessionError as exc:
            if type(exc) is not CorruptSessionError:
                raise  # e.g. EncodedDataError: repair cannot help
            report = self.store.repair(key)
            logger.warning("session {} was corrupt; repaired keeping {} messages, original at {}",
                           key[:80], report.messages_kept, report.backup)
            return self.store.get(key)

    def _lookup(self, session: Any) -> _Seen | None:
        with self._lock:
            seen = self._seen.get(id(session))
            return seen if seen is not None and seen.ref() is session else None

    def _remember(self, session: Any, version: str | None, extra: dict[str, Any]) -> None:
        ident = id(session)

        def forget(_: object) -> None:
            with self._lock:
                if (entry := self._seen.get(ident)) is not None and entry.ref() is None:
                    del self._seen[ident]

        with self._lock:
            self._seen[ident] = _Seen(weakref.ref(session, forget), session.key, version, extra)


def _listing(info: SessionInfo) -> NanobotSessionInfo:
    updated = info.updated_at.isoformat() if info.updated_at else ""
    return {
        "key": info.key,
        "created_at": info.created_at.isoformat() if info.created_at else updated,
        "updated_at": updated,
        "title": info.title or "",
        "preview": info.preview or "",
        "path": info.location or "",
    }
