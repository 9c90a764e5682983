"""``prune``: retention by age (``--older-than``) and/or count (``--keep``), deleting safely.

Deletes are conditional on the version seen when the session was chosen, so a session
that an agent updated between the listing and the delete is kept, not lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from loguru import logger

from nanosession.errors import ConflictError, NanosessionError
from nanosession.record import SessionInfo
from nanosession.store import Store

DELETED, CHANGED, FAILED = "deleted", "changed", "failed"


def select(
    infos: Sequence[SessionInfo],
    *,
    older_than: timedelta | None,
    keep: int | None,
    now: datetime,
) -> tuple[list[SessionInfo], list[SessionInfo]]:
    """``(to_delete, unreadable)``. ``keep`` spares the N newest readable sessions;
    with both criteria a session must meet both to go. Unreadable ones are never chosen."""
    readable: list[SessionInfo] = []
    unreadable: list[SessionInfo] = []
    for info in infos:
        ok = info.error is None and info.updated_at is not None
        (readable if ok else unreadable).append(info)
    readable.sort(key=lambda i: i.updated_at.timestamp(), reverse=True)  # type: ignore[union-attr]
    doomed = readable[keep:] if keep is not None else readable
    if older_than is not None:
        cutoff = (now - older_than).timestamp()
        doomed = [i for i in doomed if i.updated_at.timestamp() < cutoff]  # type: ignore[union-attr]
    return doomed, unreadable


def delete_unchanged(store: Store, info: SessionInfo) -> tuple[str, str]:
    """Delete ``info.key`` only if it was not updated since it was listed."""
    try:
        version = info.version
        if version is None:
            record = store.get(info.key)
            if record is None:
                return CHANGED, "already gone"
            listed = info.updated_at.timestamp() if info.updated_at else 0.0
            if record.updated_at.timestamp() > listed:
                return CHANGED, "updated since it was listed; kept"
            version = record.version
        store.delete(info.key, version=version)
        return DELETED, ""
    except ConflictError:
        return CHANGED, "changed or deleted meanwhile; kept"
    except NanosessionError as exc:
        logger.debug("prune of {} failed: {}", info.key[:80], exc)
        return FAILED, str(exc)
