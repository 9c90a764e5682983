"""Versions, conflicts, deletes and delta saves: no stale copy ever overwrites a newer one."""

from __future__ import annotations

import pytest

from nanosession.errors import ConflictError, SessionNotFoundError
from nanosession.record import SessionRecord, Update
from nanosession.store import Store
from nanosession.testing.base import ConformanceBase, assert_same_record, requires
from nanosession.testing.sessions import T0, conversation, message


def _record(key: str = "k", n: int = 2, **meta: object) -> SessionRecord:
    return SessionRecord(key, conversation(n), dict(meta), T0, T0)


class ConflictTests(ConformanceBase):
    """Optimistic concurrency through versions, and delete semantics."""

    # -- conflicts --------------------------------------------------------------------------
    def test_stale_save_raises_and_keeps_the_winner(self, store: Store) -> None:
        store.save(_record())
        a, b = store.load("k"), store.load("k")
        a.messages = [*a.messages, message("user", "from A")]
        b.messages = [*b.messages, message("user", "from B")]
        store.save(a)
        with pytest.raises(ConflictError) as info:
            store.save(b)
        assert info.value.key == "k"
        assert_same_record(store.load("k"), a)

    def test_stale_delta_save_raises_and_keeps_the_winner(self, store: Store) -> None:
        store.save(_record())
        a, b = store.load("k"), store.load("k")
        a.messages = [*a.messages, message("user", "from A")]
        b.messages = [*b.messages, message("user", "from B")]
        store.save(a, unchanged=2)
        with pytest.raises(ConflictError):
            store.save(b, unchanged=2)
        assert_same_record(store.load("k"), a)

    def test_create_over_existing_raises(self, store: Store) -> None:
        first = _record(title="first")
        store.save(first, mode="create")
        with pytest.raises(ConflictError):
            store.save(_record(n=5, title="second"), mode="create")
        assert_same_record(store.load("k"), first)

    def test_default_mode_of_a_new_record_is_create(self, store: Store) -> None:
        first = _record(title="first")
        store.save(first)
        with pytest.raises(ConflictError):
            store.save(_record(title="unrelated"))  # no version: must not clobber
        assert_same_record(store.load("k"), first)

    def test_update_of_a_deleted_session_raises(self, store: Store) -> None:
        record = _record()
        version = store.save(record)
        assert store.delete("k") is True
        with pytest.raises(ConflictError):
            store.save(record, mode=Update(version))
        assert store.get("k") is None  # not resurrected

    def test_update_with_a_foreign_version_raises(self, store: Store) -> None:
        store.save(_record())
        with pytest.raises(ConflictError):
            store.save(_record(n=1), mode=Update("not-a-version-of-this-store"))
        assert len(store.load("k").messages) == 2

    def test_overwrite_ignores_versions(self, store: Store) -> None:
        store.save(_record())
        replacement = _record(n=1, title="replaced")
        store.save(replacement, mode="overwrite")
        assert_same_record(store.load("k"), replacement)
        fresh = _record("new", n=3)
        store.save(fresh, mode="overwrite")  # also creates
        assert_same_record(store.load("new"), fresh)

    def test_returned_and_loaded_versions_chain(self, store: Store) -> None:
        record = _record()
        version = store.save(record)
        record.messages = [*record.messages, message("user", "next")]
        version = store.save(record, mode=Update(version), unchanged=2)
        loaded = store.load("k")
        loaded.metadata = {"title": "after load"}
        store.save(loaded, mode=Update(loaded.version or ""), unchanged=3)
        assert_same_record(store.load("k"), loaded)
        with pytest.raises(ConflictError):
            store.save(record, mode=Update(version))  # superseded by the load-based save

    # -- deletes ----------------------------------------------------------------------------
    def test_delete(self, store: Store) -> None:
        store.save(_record())
        store.save(_record("other"))
        assert store.delete("k") is True
        assert store.get("k") is None
        with pytest.raises(SessionNotFoundError):
            store.load("k")
        assert [i.key for i in store.list()] == ["other"]
        assert store.delete("k") is False
        assert store.delete("never-existed") is False
        recreated = _record(n=1, title="again")
        store.save(recreated, mode="create")
        assert_same_record(store.load("k"), recreated)

    def test_delete_with_current_version(self, store: Store) -> None:
        store.save(_record())
        assert store.delete("k", version=store.load("k").version) is True
        assert store.get("k") is None

    def test_stale_delete_raises_and_keeps_the_session(self, store: Store) -> None:
        record = _record()
        stale = store.save(record)
        record.messages = [*record.messages, message("user", "newer")]
        store.save(record, mode=Update(stale))
        with pytest.raises(ConflictError):
            store.delete("k", version=stale)
        assert_same_record(store.load("k"), record)

    def test_versioned_delete_of_a_missing_session_raises(self, store: Store) -> None:
        version = store.save(_record())
        store.delete("k")
        with pytest.raises(ConflictError):
            store.delete("k", version=version)

    # -- delta saves --------------------------------------------------------------------------
    def test_delta_saves_store_the_full_message_list(self, store: Store) -> None:
        record = _record(n=3)
        version = store.save(record)
        for i in range(12):
            stored = len(record.messages)
            if i == 5:  # an edit: everything is rewritten
                record.messages = [message("system", "summary"), *record.messages[2:]]
                stored = 0
            record.messages = [*record.messages, *conversation(1 + i % 3, tag=f"r{i}-")]
            record.metadata = {"title": f"round {i}", "round": i}
            record.updated_at = record.updated_at.replace(minute=i)
            record.last_consolidated = i // 2
            version = store.save(record, mode=Update(version), unchanged=stored)
            assert_same_record(store.load("k"), record)

    def test_delta_save_after_reload_following_a_conflict(self, store: Store) -> None:
        store.save(_record())
        a, b = store.load("k"), store.load("k")
        a.messages = [*a.messages, message("user", "A")]
        store.save(a, unchanged=2)
        b.messages = [*b.messages, message("user", "B")]
        with pytest.raises(ConflictError):
            store.save(b, unchanged=2)
        b = store.load("k")
        b.messages = [*b.messages, message("user", "B")]
        store.save(b, unchanged=3)
        assert [m["content"] for m in store.load("k").messages][-2:] == ["A", "B"]

    @requires("append")
    def test_delta_save_appends(self, store: Store) -> None:
        """Where ``append`` is claimed, a delta save keeps the stored bytes as a prefix."""
        record = _record(n=50)
        version = store.save(record)
        before = b"\n".join(self.jsonl_lines(store, "k"))
        record.messages = [*record.messages, message("user", "appended")]
        store.save(record, mode=Update(version), unchanged=50)
        after = self.read_raw(store, "k") or b""
        assert after.startswith(before), "the delta save rewrote the stored session"
        assert len(after) - len(before) < len(before) // 2
