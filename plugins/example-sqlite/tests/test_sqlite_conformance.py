"""nanosession-sqlite against the public conformance suite, plus what the suite cannot plant.

The suite's corruption tests edit JSONL bytes, which this backend does not store
(``raw_format = None`` skips them); the tests below damage rows with SQL instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from nanosession import (
    ConflictError,
    CorruptSessionError,
    InvalidURLError,
    SessionRecord,
    Store,
    Update,
    open_store,
)
from nanosession.testing import StoreTests


def sqlite_url(path: Path) -> str:
    return f"sqlite://{path.as_posix()}"


class TestSQLiteConformance(StoreTests):
    raw_format = None

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        with open_store(sqlite_url(tmp_path / "sessions.sqlite")) as s:
            yield s


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Store, sqlite3.Connection]]:
    """A store and a second, raw connection to the same file (to damage rows)."""
    path = tmp_path / "s.sqlite"
    with open_store(sqlite_url(path)) as store:
        raw = sqlite3.connect(path, isolation_level=None)
        yield store, raw
        raw.close()


def _messages(n: int) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(n)]


def test_url_forms(tmp_path: Path) -> None:
    with open_store(sqlite_url(tmp_path / "deep" / "dir" / "x.sqlite")) as store:
        store.save(SessionRecord("k", _messages(1)))
    assert (tmp_path / "deep" / "dir" / "x.sqlite").is_file()
    for bad in ("sqlite://host/x.sqlite", "sqlite://", "sqlite:///"):
        with pytest.raises(InvalidURLError):
            open_store(bad)


def test_delta_save_inserts_only_new_rows(db: tuple[Store, sqlite3.Connection]) -> None:
    store, raw = db
    record = SessionRecord("k", _messages(50))
    version = store.save(record)
    rowids = dict(raw.execute("SELECT idx, rowid FROM messages WHERE key='k'").fetchall())
    record.messages = [*record.messages, {"role": "user", "content": "new"}]
    store.save(record, mode=Update(version), unchanged=50)
    after = dict(raw.execute("SELECT idx, rowid FROM messages WHERE key='k'").fetchall())
    assert len(after) == 51
    assert {i: after[i] for i in range(50)} == rowids, "stored message rows were rewritten"


def test_versions_never_repeat_after_delete_and_recreate(
    db: tuple[Store, sqlite3.Connection],
) -> None:
    store, _ = db
    old = store.save(SessionRecord("k", _messages(1)))
    store.delete("k")
    store.save(SessionRecord("k", _messages(2)))
    with pytest.raises(ConflictError):
        store.save(SessionRecord("k", _messages(3)), mode=Update(old))
    assert len(store.load("k").messages) == 2


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE messages SET data = x'00ff7b' WHERE idx = 2",
        "UPDATE messages SET data = '42' WHERE idx = 2",
        "DELETE FROM messages WHERE idx = 2",
    ],
    ids=["garbage", "non_object", "missing_row"],
)
def test_damaged_rows_fail_load_and_repair_keeps_the_rest(
    db: tuple[Store, sqlite3.Connection], damage: str
) -> None:
    store, raw = db
    store.save(SessionRecord("k", _messages(5), {"title": "keep"}))
    store.save(SessionRecord("other", _messages(2)))
    raw.execute(damage)
    with pytest.raises(CorruptSessionError) as info:
        store.load("k")
    assert info.value.problems
    assert {i.key for i in store.list()} == {"k", "other"}  # listing still works

    dry = store.repair("k", dry_run=True)
    assert dry.problems and not dry.repaired and dry.messages_kept == 4
    assert raw.execute("SELECT count(*) FROM backups").fetchone() == (0,)

    report = store.repair("k")
    assert report.repaired and report.backup and report.messages_kept == 4
    repaired = store.load("k")
    assert [m["content"] for m in repaired.messages] == ["m0", "m1", "m3", "m4"]
    assert repaired.metadata == {"title": "keep"}
    kept = raw.execute("SELECT idx FROM backups WHERE key='k' ORDER BY idx").fetchall()
    assert [i for (i,) in kept] == [-1, *(i for i in range(5) if i != 2 or "DELETE" not in damage)]
    assert store.repair("k").ok
    repaired.messages = [*repaired.messages, {"role": "user", "content": "after"}]
    store.save(repaired, unchanged=4)
    assert len(store.load("k").messages) == 5


def test_malformed_session_row_is_reported_and_repaired(
    db: tuple[Store, sqlite3.Connection],
) -> None:
    store, raw = db
    store.save(SessionRecord("k", _messages(3), {"title": "t"}))
    raw.execute("UPDATE sessions SET meta = 'not json' WHERE key='k'")
    with pytest.raises(CorruptSessionError, match="malformed"):
        store.load("k")
    report = store.repair("k")
    assert report.repaired and report.messages_kept == 3
    assert store.load("k").metadata == {}
    assert raw.execute("SELECT data FROM backups WHERE idx=-1").fetchone() == ("not json",)


def test_two_connections_share_one_database(tmp_path: Path) -> None:
    """Two stores (as two processes would) on one file: versions and conflicts hold."""
    url = sqlite_url(tmp_path / "shared.sqlite")
    with open_store(url) as a, open_store(url) as b:
        a.save(SessionRecord("k", _messages(1)))
        ra, rb = a.load("k"), b.load("k")
        rb.messages = [*rb.messages, {"role": "user", "content": "from b"}]
        b.save(rb, unchanged=1)
        with pytest.raises(ConflictError):
            a.save(ra)
        assert [m["content"] for m in a.load("k").messages] == ["m0", "from b"]
