"""``copy``: migrate every session from one store to another, resumably.

Each session is decided on its own, so a re-run after an interruption only does what is
still missing or older at the destination: absent there -> create; older there (by
``updated_at``) -> compare-and-swap update; newer there -> kept unless forced; equal ->
nothing. Writes are conditional, so another writer racing the copy is reported as a
conflict instead of being overwritten.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime

from loguru import logger

from nanosession.errors import ConflictError, NanosessionError
from nanosession.record import PutMode, SessionRecord, Update
from nanosession.store import Store

COPIED, UPDATED, REPLACED = "copied", "updated", "replaced"
UNCHANGED, KEPT_NEWER, FAILED = "unchanged", "kept-newer", "failed"
WRITES = (COPIED, UPDATED, REPLACED)


@dataclass(frozen=True)
class Outcome:
    """What happened to one session; ``detail`` explains a failure or a skip."""

    key: str
    action: str
    detail: str = ""


@dataclass
class CopyReport:
    """Totals of a copy run and the end-of-run verification."""

    actions: Counter[str] = field(default_factory=Counter)
    failures: list[Outcome] = field(default_factory=list)
    in_sync: list[str] = field(default_factory=list)
    source_count: int = 0
    destination_count: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    verified_content: int = 0

    @property
    def ok(self) -> bool:
        """Nothing failed, nothing is missing, no verified copy differs."""
        return not (self.failures or self.missing or self.mismatched)


def _stamp(value: datetime) -> float:
    return value.timestamp()  # naive values are local time on both sides


def clone(record: SessionRecord) -> SessionRecord:
    """A version-less copy of ``record`` to write to another store."""
    return SessionRecord(
        key=record.key,
        messages=list(record.messages),
        metadata=dict(record.metadata),
        created_at=record.created_at,
        updated_at=record.updated_at,
        last_consolidated=record.last_consolidated,
        extra=dict(record.extra),
    )


def same_session(a: SessionRecord, b: SessionRecord) -> bool:
    """Whether two stores hold the same session (versions are per store and ignored)."""
    return (
        a.key == b.key
        and list(a.messages) == list(b.messages)
        and a.metadata == b.metadata
        and _stamp(a.created_at) == _stamp(b.created_at)
        and _stamp(a.updated_at) == _stamp(b.updated_at)
        and a.last_consolidated == b.last_consolidated
        and a.extra == b.extra
    )


def copy_one(
    src: Store, dst: Store, key: str, *, known_absent: bool, force: bool, dry_run: bool
) -> Outcome:
    """Bring ``key`` up to date at ``dst``; never raises for a storage problem."""
    try:
        record = src.load(key)
        current = None if known_absent else dst.get(key)
        mode: PutMode
        if current is None:
            action, mode = COPIED, "create"
        else:
            src_t, dst_t = _stamp(record.updated_at), _stamp(current.updated_at)
            if src_t == dst_t:
                return Outcome(key, UNCHANGED)
            if src_t < dst_t and not force:
                return Outcome(key, KEPT_NEWER, "destination copy is newer (--force replaces)")
            action = UPDATED if src_t > dst_t else REPLACED
            mode = Update(current.version) if current.version else "overwrite"
        if not dry_run:
            dst.save(clone(record), mode=mode)
        return Outcome(key, action)
    except ConflictError as exc:
        if known_absent:  # created at the destination since it was listed: decide again
            return copy_one(src, dst, key, known_absent=False, force=force, dry_run=dry_run)
        logger.debug("copy of {} hit a conflict: {}", key[:80], exc)
        return Outcome(key, FAILED, str(exc))
    except NanosessionError as exc:
        logger.debug("copy of {} failed: {}", key[:80], exc)
        return Outcome(key, FAILED, str(exc))


def copy_sessions(
    src: Store,
    dst: Store,
    *,
    prefix: str = "",
    jobs: int = 8,
    force: bool = False,
    dry_run: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_item: Callable[[Outcome], None] | None = None,
) -> CopyReport:
    """Copy every session under ``prefix``; ``on_item`` is called once per session."""
    keys = [info.key for info in src.list(prefix, details=False)]
    present = {info.key for info in dst.list(prefix, details=False)}
    if on_start:
        on_start(len(keys))
    report = CopyReport()
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="ns-copy") as pool:
        futures = [
            pool.submit(copy_one, src, dst, key, known_absent=key not in present,
                        force=force, dry_run=dry_run)
            for key in keys
        ]
        try:
            for future in as_completed(futures):
                outcome = future.result()
                report.actions[outcome.action] += 1
                if outcome.action == FAILED:
                    report.failures.append(outcome)
                elif outcome.action != KEPT_NEWER:
                    report.in_sync.append(outcome.key)
                if on_item:
                    on_item(outcome)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return report


def verify(
    src: Store, dst: Store, report: CopyReport, *, prefix: str = "",
    content: Iterable[str] = (), jobs: int = 8,
) -> None:
    """Count both sides (every source key must exist at the destination) and compare the
    sessions named in ``content`` field by field."""
    source = {info.key for info in src.list(prefix, details=False)}
    destination = {info.key for info in dst.list(prefix, details=False)}
    report.source_count, report.destination_count = len(source), len(destination)
    report.missing = sorted(source - destination)

    def differs(key: str) -> bool:
        try:
            return not same_session(src.load(key), dst.load(key))
        except NanosessionError as exc:
            logger.debug("verify of {} failed: {}", key[:80], exc)
            return True

    keys = sorted(set(content) & source & destination)
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="ns-verify") as pool:
        report.mismatched = [k for k, bad in zip(keys, pool.map(differs, keys), strict=True)
                             if bad]
    report.verified_content = len(keys)
