"""Key -> storage name mapping: injective, reversible, safe."""

from __future__ import annotations

import re

import pytest

from nanosession.errors import InvalidKeyError
from nanosession.keys import (
    MAX_KEY_BYTES,
    MAX_NAME,
    key_from_name,
    legacy_name,
    storage_name,
    validate_key,
)

SAFE = re.compile(r"[A-Za-z0-9_-]+|~[0-9a-f]{64}")


@pytest.mark.parametrize(
    "key", ["a:b", "a_b", "a/b", "../x", "..", "\x00", "x" * 10_000, "CON", "nul", "é📝", "a\\b"]
)
def test_names_are_safe_and_reversible(key: str) -> None:
    name = storage_name(key)
    assert SAFE.fullmatch(name), name
    assert len(name) <= MAX_NAME + 1
    assert key_from_name(name) in (key, None)
    if not name.startswith("~"):
        assert key_from_name(name) == key


def test_lossy_legacy_names_collide_but_ours_do_not() -> None:
    keys = ["a:b", "a_b", "a/b"]
    assert len({legacy_name(k) for k in keys}) == 1
    assert len({storage_name(k) for k in keys}) == 3


def test_long_keys_hash_and_stay_distinct() -> None:
    a, b = "k" * 10_000, "k" * 9_999 + "j"
    assert storage_name(a) != storage_name(b)
    assert storage_name(a).startswith("~") and key_from_name(storage_name(a)) is None


@pytest.mark.parametrize("stem", ["", "a=", "Y", "!!", "YQ=", "YR"])
def test_non_canonical_stems_decode_to_nothing(stem: str) -> None:
    assert key_from_name(stem) is None


@pytest.mark.parametrize(
    ("key", "why"),
    [("", "empty"), (None, "string"), (b"k", "string"), ("\ud800", "Unicode"),
     ("x" * (MAX_KEY_BYTES + 1), "limit")],
)
def test_invalid_keys(key: object, why: str) -> None:
    with pytest.raises(InvalidKeyError, match=why):
        validate_key(key)
