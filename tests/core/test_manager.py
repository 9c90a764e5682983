"""SessionManager: nanobot's API, append-only saves, conflicts between managers, caching."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nanosession import (
    ConflictError,
    CorruptSessionError,
    SerializationError,
    SessionManager,
    open_store,
)
from nanosession.keys import storage_name

FIXTURES = Path(__file__).parent.parent / "fixtures"


def path_of(root: Path, key: str) -> Path:
    return root / (storage_name(key) + ".jsonl")


@pytest.fixture
def manager(tmp_path: Path) -> SessionManager:
    return SessionManager.from_url(str(tmp_path))


def test_round_trip_through_a_new_manager(manager: SessionManager, tmp_path: Path) -> None:
    s = manager.get_or_create("telegram:1")
    assert len(s.messages) == 0
    s.add_message("user", "hello 📝", sender_id="1")
    s.add_message("assistant", "", tool_calls=[{"id": "c1", "type": "function"}])
    s.metadata["title"] = "Greeting"
    s.last_consolidated = 1
    manager.save(s)
    again = SessionManager.from_url(str(tmp_path)).get_or_create("telegram:1")
    assert list(again.messages) == list(s.messages)
    assert again.metadata == {"title": "Greeting"} and again.last_consolidated == 1
    assert again.created_at == s.created_at and again.updated_at == s.updated_at
    assert manager.get_or_create("telegram:1") is s  # cached


def test_adding_messages_appends_and_edits_rewrite(manager: SessionManager, tmp_path: Path) -> None:
    s = manager.get_or_create("k")
    for i in range(50):
        s.add_message("tool", "r" * 500, tool_call_id=str(i))
    manager.save(s)
    path = path_of(tmp_path, "k")
    size, ino = path.stat().st_size, path.stat().st_ino
    s.add_message("user", "one more")
    manager.save(s)
    assert path.stat().st_ino == ino and path.stat().st_size - size < 400
    s.messages[3]["content"] = "edited in place"
    manager.save(s)
    assert path.stat().st_ino != ino  # detected and rewritten atomically
    s.messages[4]["tool_calls"] = [{"id": "x"}]
    s.messages[4]["tool_calls"][0]["id"] = "nested edit"
    manager.save(s)
    fresh = SessionManager.from_url(str(tmp_path)).get_or_create("k")
    assert fresh.messages[3]["content"] == "edited in place"
    assert fresh.messages[4]["tool_calls"] == [{"id": "nested edit"}]
    assert len(fresh.messages) == 51


def test_two_managers_never_overwrite_each_other(tmp_path: Path) -> None:
    a, b = SessionManager.from_url(str(tmp_path)), SessionManager.from_url(str(tmp_path))
    sa = a.get_or_create("k")
    sa.add_message("user", "first")
    a.save(sa)
    sb = b.get_or_create("k")
    sa.add_message("assistant", "from A")
    a.save(sa)
    sb.add_message("assistant", "from B")
    with pytest.raises(ConflictError):
        b.save(sb)
    b.invalidate("k")
    sb = b.get_or_create("k")
    sb.add_message("user", "B after reload")
    b.save(sb)
    fresh = SessionManager.from_url(str(tmp_path)).get_or_create("k")
    contents = [m["content"] for m in fresh.messages]
    assert contents == ["first", "from A", "B after reload"]
    # two managers creating the same new session: the second create is a conflict
    na, nb = a.get_or_create("new"), b.get_or_create("new")
    na.add_message("user", "a")
    nb.add_message("user", "b")
    a.save(na)
    with pytest.raises(ConflictError):
        b.save(nb)


def test_unserialisable_message_changes_nothing(manager: SessionManager, tmp_path: Path) -> None:
    s = manager.get_or_create("k")
    s.add_message("user", "ok")
    manager.save(s)
    before = path_of(tmp_path, "k").read_bytes()
    s.add_message("user", {1, 2})  # a set is not JSON
    with pytest.raises(SerializationError):
        manager.save(s)
    assert path_of(tmp_path, "k").read_bytes() == before
    s.messages[-1]["content"] = "fixed"
    manager.save(s)  # the session was not marked saved, so the retry stores the message
    assert [m["content"] for m in manager.read_session_file("k")["messages"]] == ["ok", "fixed"]


def test_read_and_list_have_nanobot_shapes(manager: SessionManager) -> None:
    for key, title in (("a", "Alpha"), ("b", None)):
        s = manager.get_or_create(key)
        s.add_message("user", f"  hello\n  from {key}  ")
        if title:
            s.metadata["title"] = title
        manager.save(s)
    listed = manager.list_sessions()
    assert [x["key"] for x in listed] == ["b", "a"]
    assert set(listed[0]) == {"key", "created_at", "updated_at", "title", "preview", "path"}
    assert listed[1]["title"] == "Alpha" and listed[0]["title"] == ""
    assert listed[1]["preview"] == "hello from a"
    raw = manager.read_session_file("a")
    assert raw is not None and raw["key"] == "a" and raw["messages"][0]["role"] == "user"
    assert manager.read_session_file("zzz") is None


def test_flush_all_continues_past_a_failure(tmp_path: Path) -> None:
    m = SessionManager.from_url(str(tmp_path))
    good, bad = m.get_or_create("good"), m.get_or_create("bad")
    good.add_message("user", "x")
    bad.add_message("user", "y")
    m.save(bad)
    other = SessionManager.from_url(str(tmp_path))
    o = other.get_or_create("bad")
    o.add_message("user", "z")
    other.save(o)
    assert m.flush_all() == 1  # "bad" is stale (ConflictError logged), "good" still saved
    assert SessionManager.from_url(str(tmp_path)).read_session_file("good") is not None


def test_delete_session(manager: SessionManager, tmp_path: Path) -> None:
    s = manager.get_or_create("k")
    s.add_message("user", "x")
    manager.save(s)
    assert manager.delete_session("k") is True
    assert not path_of(tmp_path, "k").exists()
    assert manager.delete_session("k") is False
    assert len(manager.get_or_create("k").messages) == 0


def test_cache_is_bounded_but_keeps_unsaved_sessions(tmp_path: Path) -> None:
    m = SessionManager(open_store(str(tmp_path)), cache_size=2)
    first = m.get_or_create("1")
    first.add_message("user", "saved")
    m.save(first)
    unsaved = m.get_or_create("2")
    unsaved.add_message("user", "not saved yet")
    for key in ("3", "4"):
        s = m.get_or_create(key)
        s.add_message("user", key)
        m.save(s)
    assert m.get_or_create("2") is unsaved  # kept: it has unsaved messages
    assert m.get_or_create("1") is not first  # evicted, reloaded from disk
    assert list(m.get_or_create("1").messages) == list(first.messages)


def test_corrupt_session_is_repaired_not_emptied(tmp_path: Path) -> None:
    m = SessionManager.from_url(str(tmp_path))
    s = m.get_or_create("k")
    s.add_message("user", "precious")
    m.save(s)
    path = path_of(tmp_path, "k")
    path.write_bytes(path.read_bytes() + b"42\n")
    with pytest.raises(CorruptSessionError):
        SessionManager.from_url(str(tmp_path), on_corrupt="raise").get_or_create("k")
    repaired = SessionManager.from_url(str(tmp_path)).get_or_create("k")
    assert [m["content"] for m in repaired.messages] == ["precious"]
    assert any(p.name.startswith(path.name + ".corrupt-") for p in tmp_path.iterdir())


@pytest.mark.parametrize("release", ["nanobot-v0.2.0", "nanobot-v0.3.5"])
def test_nanobot_workspace_works_unchanged(tmp_path: Path, release: str) -> None:
    for f in (FIXTURES / release).iterdir():
        shutil.copy(f, tmp_path)
    m = SessionManager.from_url(str(tmp_path))
    s = m.get_or_create("telegram:12345")
    assert len(s.messages) == 7 and s.last_consolidated == 2
    s.add_message("user", "new turn")
    m.save(s)
    lines = [json.loads(x) for x in path_of(tmp_path, "telegram:12345").read_text().splitlines()]
    metas = [x for x in lines if x.get("_type") == "metadata"]
    assert metas[-1]["metadata"] == {"title": "Reading notes"}
    assert metas[-1]["last_archived"] == 2 and metas[-1]["message_count"] == 8
    keys = {x["key"] for x in m.list_sessions()}
    assert keys == {"telegram:12345", "slack:C01:T_2", "cli:direct"}
