"""Bad and hostile input: typed errors for what cannot be stored, exact round trips for keys."""

from __future__ import annotations

from typing import Any

import pytest

from nanosession.errors import InvalidKeyError, SessionNotFoundError
from nanosession.record import Capabilities, SessionRecord
from nanosession.store import Store
from nanosession.testing.base import ConformanceBase
from nanosession.testing.sessions import T0, message

HOSTILE_KEYS = [
    "../x", "../../etc/passwd", "/abs", "a/b", "a\\b", "a:b", "a_b", "a%2Fb", "a?b=1&c", "a#b",
    "a*b", "a|b", 'a"b', "a<b>", "a b", " a", "a ", "a.", ".", "..", ".hidden", "-rf", "~",
    "~" + "0" * 64, "x\x00y", "line\nbreak", "tab\t", "\u2028", "CON", "con", "NUL", "COM1",
    "LPT1.txt", "aux", "Key", "key", "KEY", "ключ", "键", "٣", "🎉", "e\u0301", "\u00e9",
    "k" * 10_000, "k" * 9_999 + "j", "k" * 150, "k" * 151,
]
"""Keys that break naive storage names: traversal, separators, lossy-name collisions, URL
escapes, reserved device names, control characters, case, Unicode normalisation, length."""
BAD_KEYS: list[Any] = ["", None, 42, b"bytes", ["list"], "\ud800", "k" * 70_000]


class InputTests(ConformanceBase):
    """Missing sessions, invalid keys and hostile keys."""

    def test_capabilities_are_declared(self, store: Store) -> None:
        assert isinstance(getattr(store.backend, "capabilities", None), Capabilities), (
            "the backend object must declare its guarantees in a `capabilities` attribute"
        )

    def test_missing_session(self, store: Store) -> None:
        with pytest.raises(SessionNotFoundError) as info:
            store.load("missing")
        assert info.value.key == "missing"
        assert store.get("missing") is None
        assert store.list() == []

    @pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
    def test_invalid_keys_are_refused(self, store: Store, key: Any) -> None:
        with pytest.raises(InvalidKeyError):
            store.get(key)
        with pytest.raises(InvalidKeyError):
            store.load(key)
        with pytest.raises(InvalidKeyError):
            store.save(SessionRecord(key, [message("user", "x")]))
        with pytest.raises(InvalidKeyError):
            store.delete(key)
        with pytest.raises(InvalidKeyError):
            store.repair(key)
        assert store.list() == []

    def test_hostile_keys_round_trip_and_stay_distinct(self, store: Store) -> None:
        assert len(set(HOSTILE_KEYS)) == len(HOSTILE_KEYS)
        for i, key in enumerate(HOSTILE_KEYS):
            store.save(SessionRecord(key, [message("user", f"#{i}")], {"i": i}, T0, T0))
        for i, key in enumerate(HOSTILE_KEYS):
            loaded = store.load(key)
            assert loaded.key == key
            assert loaded.metadata == {"i": i}
            assert list(loaded.messages) == [message("user", f"#{i}")]
        listed = [i.key for i in store.list()]
        assert sorted(listed) == sorted(HOSTILE_KEYS)
        assert sorted(i.key for i in store.list(details=False)) == sorted(HOSTILE_KEYS)
        for prefix in ("a", "k" * 150, "~", ".", "\u00e9"):
            expected = sorted(k for k in HOSTILE_KEYS if k.startswith(prefix))
            assert sorted(i.key for i in store.list(prefix)) == expected, prefix
        for key in HOSTILE_KEYS:
            assert store.delete(key) is True
        assert store.list() == []
