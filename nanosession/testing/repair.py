"""Corruption: load refuses data-losing damage, repair keeps every intact message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nanosession.errors import ConflictError, CorruptSessionError, SessionNotFoundError
from nanosession.record import SessionRecord
from nanosession.store import Store
from nanosession.testing.base import ConformanceBase
from nanosession.testing.sessions import T0, conversation

KEY = "chat:corrupt"
N = 5
KINDS = ["garbage_line", "non_object_line", "truncated_tail", "null_metadata", "missing_metadata"]
LOSSY = {"garbage_line", "non_object_line", "truncated_tail", "missing_metadata"}
"""Damage that would lose data if load returned what it could read."""


def _is_meta(line: bytes) -> bool:
    return json.loads(line).get("_type") == "metadata"


def _damage(kind: str, lines: list[bytes]) -> bytes:
    """The stored JSONL ``lines`` with one kind of damage, as bytes."""
    if kind in ("garbage_line", "non_object_line"):
        bad = b'{"role": "user", "content": "cut' if kind == "garbage_line" else b"42"
        at = [i for i, line in enumerate(lines) if not _is_meta(line)][2]
        lines = [*lines[:at], bad, *lines[at:]]
    elif kind == "truncated_tail":
        assert not _is_meta(lines[-1]), "expected a freshly written session to end in a message"
        return b"\n".join([*lines[:-1], lines[-1][: len(lines[-1]) // 2]])
    elif kind == "null_metadata":
        lines = [_null_metadata(line) if _is_meta(line) else line for line in lines]
    else:
        lines = [line for line in lines if not _is_meta(line)]
    return b"\n".join(lines) + b"\n"


def _null_metadata(line: bytes) -> bytes:
    meta: dict[str, Any] = json.loads(line)
    meta["metadata"] = None
    return json.dumps(meta, ensure_ascii=False).encode()


class RepairTests(ConformanceBase):
    """``Store.repair`` and loading damaged data. Needs ``raw_read``/``raw_write`` (JSONL)."""

    def _plant(self, store: Store, kind: str) -> tuple[SessionRecord, bytes]:
        record = SessionRecord(KEY, conversation(N), {"title": "keep me"}, T0, T0)
        store.save(record)
        damaged = _damage(kind, self.jsonl_lines(store, KEY))
        self.write_raw(store, KEY, damaged)
        return record, damaged

    @pytest.mark.parametrize("kind", KINDS)
    def test_load_refuses_data_losing_damage(self, store: Store, kind: str) -> None:
        record, _ = self._plant(store, kind)
        if kind in LOSSY:
            with pytest.raises(CorruptSessionError) as info:
                store.get(KEY)
            assert info.value.key == KEY and info.value.problems
            with pytest.raises(CorruptSessionError):
                store.load(KEY)
        else:
            try:
                loaded = store.load(KEY)
            except CorruptSessionError:
                return
            assert list(loaded.messages) == record.messages and loaded.metadata == {}

    @pytest.mark.parametrize("kind", KINDS)
    def test_corrupt_session_is_not_replaced_by_a_create(self, store: Store, kind: str) -> None:
        _, damaged = self._plant(store, kind)
        with pytest.raises(ConflictError):
            store.save(SessionRecord(KEY, [], {}, T0, T0))
        assert self.read_raw(store, KEY) == damaged

    @pytest.mark.parametrize("kind", KINDS)
    def test_dry_run_reports_and_changes_nothing(self, store: Store, kind: str) -> None:
        _, damaged = self._plant(store, kind)
        names = self.names_if_known(store)
        report = store.repair(KEY, dry_run=True)
        assert report.key == KEY and report.problems and not report.ok
        assert not report.repaired and report.backup is None
        assert report.messages_kept == (N - 1 if kind == "truncated_tail" else N)
        assert self.read_raw(store, KEY) == damaged
        assert self.names_if_known(store) == names

    @pytest.mark.parametrize("kind", KINDS)
    def test_repair_keeps_every_intact_message(self, store: Store, kind: str) -> None:
        record, _ = self._plant(store, kind)
        names = self.names_if_known(store)
        report = store.repair(KEY)
        intact = record.messages[:-1] if kind == "truncated_tail" else record.messages
        assert report.repaired and report.problems and report.backup
        assert report.messages_kept == len(intact)
        if kind in ("garbage_line", "non_object_line", "truncated_tail"):
            assert report.lines_dropped >= 1
        repaired = store.load(KEY)
        assert repaired.key == KEY and list(repaired.messages) == intact
        if kind in ("garbage_line", "non_object_line", "truncated_tail"):
            assert repaired.metadata == record.metadata
            assert (repaired.created_at, repaired.updated_at) == (T0, T0)
        after = self.names_if_known(store)
        if names is not None and after is not None:
            assert after - names, "repair kept no copy of the original on the medium"
        assert [i.key for i in store.list()] == [KEY], "the backup was listed as a session"
        assert store.repair(KEY).ok, "a repaired session still has problems"

    def test_repaired_session_saves_again(self, store: Store) -> None:
        self._plant(store, "non_object_line")
        store.repair(KEY)
        record = store.load(KEY)
        record.messages = [*record.messages, *conversation(1, tag="after")]
        store.save(record, unchanged=N)
        assert len(store.load(KEY).messages) == N + 1

    def test_repair_of_a_healthy_session_changes_nothing(self, store: Store) -> None:
        store.save(SessionRecord(KEY, conversation(N), {"title": "fine"}, T0, T0))
        names = self.names_if_known(store)
        before = self.read_raw(store, KEY) if names is not None else None
        report = store.repair(KEY)
        assert report.ok and not report.repaired and report.backup is None
        assert report.messages_kept == N
        if names is not None:
            assert self.names_if_known(store) == names and self.read_raw(store, KEY) == before

    def test_repair_of_a_missing_session_raises(self, store: Store) -> None:
        with pytest.raises(SessionNotFoundError):
            store.repair("missing")
        with pytest.raises(SessionNotFoundError):
            store.repair("missing", dry_run=True)
