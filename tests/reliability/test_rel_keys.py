"""Hostile keys: any Unicode key maps injectively to a safe name inside the store's root."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storedir import sessions_dir

from nanosession import InvalidKeyError, SessionRecord, Store, open_store
from nanosession.keys import MAX_KEY_BYTES, SUFFIX, key_from_name, storage_name

SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+|~[0-9a-f]{64}")
WINDOWS_RESERVED = ["CON", "PRN", "AUX", "NUL", "COM1", "LPT9", "con.txt", "nul.jsonl"]
NASTY = [
    ".", "..", "...", "/", "//", "\\", "../../etc/passwd", "..\\..\\boot.ini", "a/../b",
    "/abs/path", "C:\\Windows", "\x00", "a\x00b", "\r\n", "\t", " ", "  padded  ", "~",
    "~" + "0" * 64, "-", "_", "=", "a=", ".jsonl", "x.jsonl", ".hidden", "telegram:123",
    "a:b", "a_b", "a/b", "a\\b", "*?<>|\"", "e\u0301", "\u00e9", "\u202e\u0644\u0627",
    "\ufeff", "\U0001f600", "\x7f", "\x1b[31m", *(chr(c) for c in range(1, 32)),
    "x" * 150, "x" * 151, "é" * 75, "é" * 76, "x" * 10_000, "漢" * 10_000,
    *WINDOWS_RESERVED,
]
NASTY = list(dict.fromkeys(NASTY))
keys = st.text(min_size=1) | st.sampled_from(NASTY)
def _in_root(store: Store, key: str) -> Path:
    root = Path(store.backend.root).resolve()  # type: ignore[attr-defined]
    path = store.backend.path(key).resolve()  # type: ignore[attr-defined]
    assert path.parent == root
    return path


def test_named_nasty_keys_get_distinct_safe_names() -> None:
    names = [storage_name(k) for k in NASTY]
    assert len(set(names)) == len(set(NASTY))
    for key, name in zip(NASTY, names, strict=True):
        assert SAFE_NAME.fullmatch(name), (key, name)
        assert len((name + SUFFIX).encode()) <= 255
        assert key_from_name(name) in (key, None)
        assert name.upper() not in WINDOWS_RESERVED and not name.startswith(".")


@settings(max_examples=500, deadline=None)
@given(keys, keys)
def test_storage_names_are_injective_safe_and_reversible(a: str, b: str) -> None:
    for key in (a, b):
        name = storage_name(key)
        assert SAFE_NAME.fullmatch(name)
        assert len((name + SUFFIX).encode()) <= 255
        back = key_from_name(name)
        # hashed names (long keys) decode to None: the key is read from the stored file
        assert back == key if not name.startswith("~") else back is None
    assert (storage_name(a) == storage_name(b)) == (a == b)


@settings(max_examples=60, deadline=None)
@given(st.lists(keys, min_size=1, max_size=8, unique=True))
def test_local_store_round_trips_any_keys_inside_its_root(batch: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(tmp, backend="local")
        for i, key in enumerate(batch):
            store.save(SessionRecord(key, [{"role": "user", "content": key, "i": i}]))
            _in_root(store, key)
        for i, key in enumerate(batch):
            rec = store.load(key)
            assert rec.key == key and rec.messages == [{"role": "user", "content": key, "i": i}]
        for details in (True, False):
            assert sorted(i.key for i in store.list(details=details)) == sorted(batch)
        assert {p.parent for p in Path(tmp).rglob("*")} == {Path(tmp)}  # nothing nested
        for key in batch:
            assert store.delete(key)
        assert sessions_dir(Path(tmp)) == []


@pytest.mark.parametrize("backend", ["local", "fsspec"])
def test_every_nasty_key_round_trips(tmp_path: Path, backend: str) -> None:
    store = open_store(tmp_path.as_uri(), backend=backend)
    chosen = NASTY
    for key in chosen:
        store.save(SessionRecord(key, [{"role": "user", "content": "x"}]))
        assert store.load(key).key == key
    if backend == "local":
        for key in chosen:
            _in_root(store, key)
    assert sorted(i.key for i in store.list()) == sorted(chosen)
    assert {p.parent for p in tmp_path.rglob("*")} == {tmp_path}
    for key in chosen:
        assert store.delete(key)
    assert sessions_dir(tmp_path) == []


@pytest.mark.parametrize("key", ["\x00", "a\x00b", "x" * 300, "x" * 10_000])
def test_keys_with_nul_or_longer_than_a_file_name_round_trip_locally(
    tmp_path: Path, key: str
) -> None:
    """Regression: nanobot v0.2.0's lossy name of such keys is not a usable file name."""
    store = open_store(str(tmp_path), backend="local")
    store.save(SessionRecord(key, [{"role": "user", "content": "x"}]))
    assert store.load(key).key == key
    assert [i.key for i in store.list()] == [key]


@pytest.mark.parametrize("bad", ["", "\ud800", "a\udfffb", "x" * (MAX_KEY_BYTES + 1), None, 7])
def test_unstorable_keys_are_refused_with_a_typed_error(tmp_path: Path, bad: object) -> None:
    store = open_store(str(tmp_path), backend="local")
    with pytest.raises(InvalidKeyError):
        store.save(SessionRecord(bad, []))  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        store.get(bad)  # type: ignore[arg-type]
    assert sessions_dir(tmp_path) == []


@pytest.mark.parametrize("backend", ["local", "fsspec"])
def test_a_session_with_a_30_kib_key_is_listed_under_its_key(
    tmp_path: Path, backend: str
) -> None:
    key = "漢" * 10_000  # 10,000 characters, 30,000 bytes of UTF-8
    store = open_store(tmp_path.as_uri(), backend=backend)
    store.save(SessionRecord(key, [{"role": "user", "content": "x" * 20_000}]))
    assert store.load(key).key == key  # load is fine: the key is read from the file
    (info,) = store.list()
    assert info.error is None and info.key == key


def _objects(target: tuple[str, dict[str, str]]) -> list[str]:
    import boto3

    url, options = target
    bucket = url.removeprefix("s3://").split("/")[0]
    client = boto3.client("s3", endpoint_url=options["endpoint_url"], region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


@pytest.mark.parametrize("target", ["s3_target", "s3fs_target"])
def test_s3_object_names_stay_under_the_prefix(
    request: pytest.FixtureRequest, target: str
) -> None:
    url, options = request.getfixturevalue(target)
    store = open_store(url, **options)
    chosen = [k for k in NASTY if len(k) < 2000] + ["x" * 10_000]
    for key in chosen:
        store.save(SessionRecord(key, [{"role": "user", "content": "x"}]))
    for key in chosen:
        assert store.load(key).key == key
    assert sorted(i.key for i in store.list()) == sorted(set(chosen))
    names = _objects((url, options))
    assert len(names) == len(set(chosen))
    for name in names:
        assert name.startswith("rel/") and SAFE_NAME.fullmatch(name[4 : -len(SUFFIX)]), name
