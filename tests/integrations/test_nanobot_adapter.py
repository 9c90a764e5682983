"""nanobot's own SessionManager running on nanosession stores through the adapter.

Runs against the real ``nanobot-ai`` package (the ``nanobot`` extra) on the local backend
and on S3 (moto's HTTP server on loopback).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nanobot")

from nanobot.providers.base import ProviderConversationState
from nanobot.session.manager import SessionManager

from nanosession import ConflictError, SessionRecord, open_store
from nanosession.integrations.nanobot import NanobotSessionStore

pytestmark = pytest.mark.timeout(120)

Opener = Callable[..., NanobotSessionStore]


@pytest.fixture(params=["local", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """(url, options) of an empty store on the backend under test."""
    if request.param == "local":
        return str(tmp_path / "store"), {}
    bucket = request.getfixturevalue("s3_bucket")
    endpoint = request.getfixturevalue("moto_endpoint")
    return f"s3://{bucket}/nanobot/sessions", {"endpoint_url": endpoint}


@pytest.fixture
def opened(target: tuple[str, dict[str, Any]]) -> Opener:
    url, options = target
    made: list[NanobotSessionStore] = []

    def open_adapter(**extra: Any) -> NanobotSessionStore:
        made.append(NanobotSessionStore.from_url(url, **options, **extra))
        return made[-1]

    yield open_adapter
    for adapter in made:
        adapter.close()


def nanobot_manager(tmp_path: Path, store: NanobotSessionStore) -> SessionManager:
    workspace = tmp_path / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    # sessions_root keeps nanobot's own (unused) JSONL store out of the home directory
    return SessionManager(workspace, store=store, sessions_root=tmp_path / "nanobot-data")


def state() -> ProviderConversationState:
    return ProviderConversationState(kind="responses", provider="openai", model="gpt-x",
                                     version=1, payload={"id": "resp_1"})


def test_create_save_reload_in_a_new_manager(tmp_path: Path, opened: Opener) -> None:
    first = nanobot_manager(tmp_path, opened())
    s = first.get_or_create("telegram:42")
    assert s.messages == []
    s.add_message("user", "Plan my trip to Kyoto 🗾")
    s.add_message("assistant", "", tool_calls=[{"id": "c1", "type": "function",
                                               "function": {"name": "search", "arguments": "{}"}}])
    s.add_message("tool", "results", tool_call_id="c1", name="search")
    s.metadata["title"] = "Kyoto"
    s.last_archived = 1
    s.provider_state = state()
    first.save(s)

    second = nanobot_manager(tmp_path, opened())
    again = second.get_or_create("telegram:42")
    assert again is not s
    assert again.messages == s.messages
    assert again.metadata == {"title": "Kyoto"}
    assert again.last_archived == again.last_consolidated == 1
    assert again.created_at == s.created_at and again.updated_at == s.updated_at
    assert again.provider_state == state()
    assert again.get_history() == s.get_history()

    again.add_message("assistant", "Day 1: Fushimi Inari")
    second.save(again)  # a later save of the reloaded session works and keeps everything
    third = nanobot_manager(tmp_path, opened()).get_or_create("telegram:42")
    assert [m["content"] for m in third.messages][-1] == "Day 1: Fushimi Inari"
    assert third.provider_state == state()


def test_list_read_and_delete(tmp_path: Path, opened: Opener) -> None:
    manager = nanobot_manager(tmp_path, opened())
    for key, text in (("cli:a", "first chat"), ("cli:b", "second chat")):
        s = manager.get_or_create(key)
        s.add_message("user", text)
        s.updated_at = datetime(2026, 1, 1 if key == "cli:a" else 2)
        manager.save(s)
    listed = manager.list_sessions()
    assert [(e["key"], e["preview"]) for e in listed] == [
        ("cli:b", "second chat"), ("cli:a", "first chat")
    ]  # newest updated_at first
    assert all(isinstance(e["created_at"], str) and e["path"] for e in listed)
    assert manager.read_session_file("cli:a")["messages"][0]["content"] == "first chat"
    assert manager.read_session_file("cli:none") is None
    assert manager.read_session_metadata("cli:b")["key"] == "cli:b"

    assert manager.delete_session("cli:a") is True
    assert [e["key"] for e in manager.list_sessions()] == ["cli:b"]
    assert nanobot_manager(tmp_path, opened()).get_or_create("cli:a").messages == []
    assert manager.delete_session("cli:a") is False


def test_metadata_update_reaches_storage_and_the_cached_session(
    tmp_path: Path, opened: Opener
) -> None:
    manager = nanobot_manager(tmp_path, opened())
    s = manager.get_or_create("web:1")
    s.add_message("user", "hi")
    manager.save(s)
    assert manager.update_session_metadata("web:1", {"title": "Renamed"}) is True
    assert s.metadata["title"] == "Renamed"  # nanobot applies it to its cached copy
    s.add_message("assistant", "hello")
    manager.save(s)  # no conflict: the adapter moved this session's version along
    fresh = nanobot_manager(tmp_path, opened())
    assert fresh.read_session_metadata("web:1")["metadata"] == {"title": "Renamed"}
    assert [e["title"] for e in fresh.list_sessions()] == ["Renamed"]
    assert len(fresh.get_or_create("web:1").messages) == 2
    assert manager.update_session_metadata("web:missing", {"title": "x"}) is False


def test_a_stale_save_raises_unless_overwrite_is_chosen(tmp_path: Path, opened: Opener) -> None:
    one = nanobot_manager(tmp_path, opened())
    two = nanobot_manager(tmp_path / "two", opened())
    a = one.get_or_create("k")
    a.add_message("user", "from one")
    one.save(a)
    b = two.get_or_create("k")
    b.add_message("user", "from two")
    two.save(b)
    a.add_message("user", "one again")
    with pytest.raises(ConflictError):
        one.save(a)  # would silently drop "from two" in nanobot's own store
    lenient = nanobot_manager(tmp_path / "three", opened(on_conflict="overwrite"))
    c = lenient.get_or_create("k")
    two.save(b)  # makes c stale
    c.add_message("user", "three wins")
    lenient.save(c)
    stored = nanobot_manager(tmp_path / "four", opened()).get_or_create("k")
    assert [m["content"] for m in stored.messages] == ["from one", "from two", "three wins"]


def test_unknown_stored_fields_round_trip(
    tmp_path: Path, target: tuple[str, dict[str, Any]], opened: Opener
) -> None:
    url, options = target
    with open_store(url, **options) as raw:
        raw.save(SessionRecord(
            key="k", messages=[{"role": "user", "content": "x"}],
            extra={"future_field": {"a": 1}, "_typed_lines": [{"_type": "other", "v": 2}]},
        ))
    manager = nanobot_manager(tmp_path, opened())
    s = manager.get_or_create("k")
    s.add_message("assistant", "y")
    manager.save(s)
    with open_store(url, **options) as raw:
        record = raw.load("k")
    assert record.extra["future_field"] == {"a": 1}
    assert record.extra["_typed_lines"] == [{"_type": "other", "v": 2}]
    assert len(record.messages) == 2


def test_nanobots_other_flows_run_on_the_adapter(tmp_path: Path, opened: Opener) -> None:
    manager = nanobot_manager(tmp_path, opened())
    s = manager.get_or_create("cli:main")
    s.add_message("user", "first question")
    s.add_message("assistant", "first answer")
    s.add_message("user", "second question")
    s.metadata["_nanobot_model_preset"] = "fast"
    manager.save(s)
    s.metadata["runtime_checkpoint"] = {"phase": "tools"}
    manager.save_runtime_checkpoint(s)  # third-party stores get a full save

    fork = manager.fork_session_before_user_index("cli:main", "cli:fork", 1)
    assert fork is not None and [m["content"] for m in fork.messages] == [
        "first question", "first answer"
    ]
    assert manager.rename_model_preset("fast", "smart") == 2  # both sessions, saved durably

    fresh = nanobot_manager(tmp_path, opened())
    assert fresh.get_or_create("cli:fork").metadata["_nanobot_model_preset"] == "smart"
    main = fresh.get_or_create("cli:main")
    assert main.metadata["runtime_checkpoint"] == {"phase": "tools"}
    assert len(main.messages) == 3
    assert sorted(e["key"] for e in fresh.list_sessions()) == ["cli:fork", "cli:main"]


def test_reads_the_sessions_nanobot_itself_wrote(tmp_path: Path) -> None:
    own = nanobot_manager(tmp_path, None)  # nanobot's built-in JSONL store
    s = own.get_or_create("discord:7")
    s.add_message("user", "written by nanobot")
    s.provider_state = state()
    s.last_archived = 1
    own.save(s)
    adapter = NanobotSessionStore.from_url(str(own.sessions_dir))
    moved = nanobot_manager(tmp_path / "moved", adapter).get_or_create("discord:7")
    assert moved.messages == s.messages and moved.provider_state == state()
    assert moved.last_archived == 1
    adapter.close()


def test_adapter_rejects_a_bad_conflict_policy(tmp_path: Path) -> None:
    from nanosession import ConfigurationError

    with pytest.raises(ConfigurationError):
        NanobotSessionStore(open_store(str(tmp_path)), on_conflict="ignore")  # type: ignore[arg-type]


def test_importing_the_integration_does_not_import_nanobot() -> None:
    code = (
        "import sys, nanosession, nanosession.aio, nanosession.integrations.nanobot\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'nanobot'], 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
