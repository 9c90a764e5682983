"""Listing: newest first, right fields, prefix and limit, and never broken by one bad entry."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from nanosession.record import SessionInfo, SessionRecord, Update
from nanosession.store import Store
from nanosession.testing.base import ConformanceBase
from nanosession.testing.sessions import T0, conversation, message

MANY = 150


def _newest_first(infos: list[SessionInfo]) -> bool:
    stamps = [i.updated_at.timestamp() for i in infos if i.updated_at is not None]
    return stamps == sorted(stamps, reverse=True)


def _save_in_order(store: Store, keys: list[str]) -> None:
    """Save ``keys`` oldest first: ``updated_at`` hours apart, and a real pause between."""
    for i, key in enumerate(keys):
        store.save(SessionRecord(key, conversation(2, tag=key), {}, T0, T0 + timedelta(hours=i)))
        time.sleep(0.02)  # beyond coarse file-system clocks


class ListingTests(ConformanceBase):
    """``Store.list`` over the backend's ``nanosession_list``."""

    def test_empty_store_lists_nothing(self, store: Store) -> None:
        assert store.list() == []
        assert store.list(details=False) == []

    def test_newest_first(self, store: Store) -> None:
        keys = ["a", "b", "c", "d"]
        _save_in_order(store, keys)
        assert [i.key for i in store.list()] == keys[::-1]
        quick = store.list(details=False)
        assert sorted(i.key for i in quick) == keys
        assert _newest_first(quick)

    def test_fields(self, store: Store) -> None:
        blocks = [{"type": "text", "text": "  Plan\n\n a   trip " + "to the sea " * 20}]
        record = SessionRecord(
            "chat:1",
            [message("assistant", "welcome"), message("user", blocks), *conversation(3)],
            {"title": "Trip plans", "other": [1]},
            T0,
            T0 + timedelta(days=2, microseconds=7),
        )
        store.save(record)
        store.save(SessionRecord("chat:2", [], {}, T0, T0))
        infos = {i.key: i for i in store.list()}
        assert set(infos) == {"chat:1", "chat:2"}
        info = infos["chat:1"]
        assert info.updated_at == record.updated_at
        assert info.created_at == record.created_at
        assert info.title == "Trip plans"
        expected = " ".join(("Plan a trip " + "to the sea " * 20).split())[:120]
        assert info.preview == expected
        assert info.message_count in (None, 5)
        assert info.error is None
        empty = infos["chat:2"]
        assert (empty.title, empty.preview, empty.error) == (None, None, None)
        assert empty.message_count in (None, 0)

    def test_listing_reflects_the_latest_save(self, store: Store) -> None:
        record = SessionRecord("k", conversation(40, size=2000), {"title": "old"}, T0, T0)
        version = store.save(record)
        record.messages = [*record.messages, message("user", "new")]
        record.metadata = {"title": "new title"}
        record.updated_at = T0 + timedelta(hours=1)
        store.save(record, mode=Update(version), unchanged=40)
        (info,) = store.list()
        assert (info.key, info.title, info.updated_at) == ("k", "new title", record.updated_at)
        assert info.message_count in (None, 41)
        assert info.preview == "0:" + "x" * 118

    def test_prefix_and_limit(self, store: Store) -> None:
        keys = ["user:1", "admin:1", "user:2", "user:10", "users", "admin:2"]
        _save_in_order(store, keys)
        users = [i.key for i in store.list("user:")]
        assert users == ["user:10", "user:2", "user:1"]
        assert sorted(i.key for i in store.list("user:", details=False)) == sorted(users)
        assert store.list("nobody") == []
        for details in (True, False):
            top = store.list(limit=2, details=details)
            assert len(top) == 2 and len({i.key for i in top}) == 2
            assert {i.key for i in top} <= set(keys) and _newest_first(top)
            assert store.list(limit=0, details=details) == []
            assert len(store.list(limit=100, details=details)) == len(keys)
            assert len(store.list("admin:", limit=1, details=details)) == 1

    def test_many_sessions(self, store: Store) -> None:
        keys = {f"s{i:03d}" for i in range(MANY)}
        for i, key in enumerate(sorted(keys)):
            store.save(SessionRecord(key, [message("user", key)], {}, T0, T0 + timedelta(i)))
        full = store.list()
        assert [i.key for i in full] == sorted(keys, reverse=True)
        assert all(i.preview == i.key for i in full)
        assert {i.key for i in store.list(details=False)} == keys
        top = store.list("s1", limit=5)
        assert len(top) == 5 and all(i.key.startswith("s1") for i in top) and _newest_first(top)

    @pytest.mark.parametrize("details", [True, False])
    def test_listed_version_is_current(self, store: Store, details: bool) -> None:
        """A version a listing reports (where it reports one) is good for a conditional save."""
        store.save(SessionRecord("k", conversation(1), {}, T0, T0))
        (info,) = store.list(details=details)
        if info.version is None:
            return
        record = store.load("k")
        record.metadata = {"via": "listed version"}
        store.save(record, mode=Update(info.version))
        assert store.load("k").metadata == {"via": "listed version"}

    @pytest.mark.parametrize("planted", [b"\x00garbage{", b"42\n", b"", b'{"role":"user"}\n'])
    def test_corrupt_entry_does_not_break_the_listing(self, store: Store, planted: bytes) -> None:
        keys = ["good:1", "good:2"]
        _save_in_order(store, keys)
        self.write_raw(store, "bad", planted)
        for details in (True, False):
            infos = {i.key: i for i in store.list(details=details)}
            assert set(keys) <= set(infos) <= {*keys, "bad"}
            assert all(infos[k].error is None for k in keys)
            if details and "bad" in infos:
                assert infos["bad"].error, "a corrupt session was listed as healthy"
