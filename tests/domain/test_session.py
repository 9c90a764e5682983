"""``Session``: its log, its mutations (and what tracking sees of them), real nanobot files."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from nanosession.history import legal_start
from nanosession.session import FILE_MAX_MESSAGES, Session
from nanosession.tracking import MessageLog

Msg = dict[str, Any]
FIXTURES = Path(__file__).parent.parent / "fixtures"


def user(text: str, **extra: Any) -> Msg:
    return {"role": "user", "content": text, **extra}


def assistant(text: str, **extra: Any) -> Msg:
    return {"role": "assistant", "content": text, **extra}


def call(call_id: str) -> Msg:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}


def tool(call_id: str, text: str = "result") -> Msg:
    return {"role": "tool", "content": text, "tool_call_id": call_id}


def turns(count: int) -> list[Msg]:
    """``count`` user/assistant pairs: u0, a0, u1, a1, ..."""
    return [m for i in range(count) for m in (user(f"u{i}"), assistant(f"a{i}"))]


def contents(messages: list[Msg]) -> list[Any]:
    return [m["content"] for m in messages]


def saved(messages: list[Msg], **fields: Any) -> Session:
    """A session as a manager hands it out after loading: its messages are the saved baseline."""
    session = Session(key="chat", messages=messages, **fields)
    session.messages.mark_saved("v1")
    return session


# -- construction and the message log --------------------------------------------------
def test_defaults() -> None:
    before = datetime.now()
    session = Session("telegram:1")
    assert type(session.messages) is MessageLog and session.messages == []
    assert session.metadata == {} and session.last_consolidated == 0
    assert before <= session.created_at <= session.updated_at <= datetime.now()
    assert session.created_at.tzinfo is None  # naive local time, like nanobot
    assert Session("a").messages is not Session("b").messages


def test_any_list_becomes_a_tracked_copy() -> None:
    given = [user("hi")]
    session = Session("k", messages=given)
    assert type(session.messages) is MessageLog
    session.messages[0]["content"] = "changed"
    assert given == [user("hi")]


def test_equality_covers_messages_and_fields() -> None:
    at = datetime(2026, 1, 1)
    one = Session("k", [user("hi")], at, at, {"t": 1}, 0)
    assert one == Session("k", [user("hi")], at, at, {"t": 1}, 0)
    assert one != Session("k", [user("ho")], at, at, {"t": 1}, 0)
    assert one != Session("k", [user("hi")], at, at, {"t": 1}, 1)
    assert one != Session("k", [user("hi")], at, at, {"t": 2}, 0)


def test_assigning_messages_keeps_the_baseline_marked_rewritten() -> None:
    session = saved(turns(2))
    session.messages = [user("new")]
    log = session.messages
    assert type(log) is MessageLog and log == [user("new")]
    assert log.saved_tag == "v1" and log.dirty
    assert log.unchanged_prefix("v1") == 0


def test_in_place_add_keeps_the_same_log() -> None:
    session = saved(turns(1))
    log = session.messages
    session.messages += [user("more")]
    assert session.messages is log and not log.dirty
    assert log.unchanged_prefix("v1") == 2


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda s: pickle.loads(pickle.dumps(s))])
def test_copies_keep_a_message_log(clone: Callable[[Session], Session]) -> None:
    session = saved(turns(1), metadata={"title": "t"})
    twin = clone(session)
    assert twin == session and type(twin.messages) is MessageLog
    twin.messages[0]["content"] = "edited"
    assert session.messages[0]["content"] == "u0"


# -- add_message -------------------------------------------------------------------------
def test_add_message_appends_and_returns_the_stored_dict() -> None:
    session = Session("k", updated_at=datetime(2000, 1, 1))
    stored = session.add_message("user", "hi", media=["/a.png"], sender_id="7")
    assert stored is session.messages[-1]
    assert stored == {
        "role": "user",
        "content": "hi",
        "timestamp": stored["timestamp"],
        "media": ["/a.png"],
        "sender_id": "7",
    }
    stamp = datetime.fromisoformat(stored["timestamp"])
    assert session.updated_at == stamp > datetime(2000, 1, 1)


def test_add_message_accepts_block_content() -> None:
    blocks = [{"type": "text", "text": "hi"}]
    assert Session("k").add_message("user", blocks)["content"] == blocks


# -- what tracking sees ------------------------------------------------------------------
MUTATIONS: dict[str, Callable[[Session], object]] = {
    "clear": Session.clear,
    "retain": lambda s: s.retain_recent_legal_suffix(2),
    "retain_all": lambda s: s.retain_recent_legal_suffix(0),
    "file_cap": lambda s: s.enforce_file_cap(limit=2),
    "assign": lambda s: setattr(s, "messages", list(s.messages)),
}


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_mutations_of_saved_messages_set_dirty(mutate: Callable[[Session], object]) -> None:
    session = saved(turns(3))
    assert not session.messages.dirty
    mutate(session)
    assert session.messages.dirty
    assert session.messages.unchanged_prefix("v1") == 0


def test_add_message_and_reads_do_not_set_dirty() -> None:
    session = saved(turns(3))
    session.add_message("user", "next")
    session.get_history(max_tokens=10)
    session.retain_recent_legal_suffix(100)
    session.enforce_file_cap(limit=100)
    assert not session.messages.dirty
    assert session.messages.unchanged_prefix("v1") == 6


def test_get_history_output_does_not_alias_stored_messages() -> None:
    session = saved([user("hi"), assistant("", tool_calls=[call("c1")]), tool("c1")])
    out = session.get_history()
    assert all(type(m) is dict for m in out)
    assert all(o is not s for o, s in zip(out, session.messages, strict=True))
    out[1]["tool_calls"][0]["id"] = "changed"
    out[0]["content"] = "changed"
    assert session.messages[1]["tool_calls"][0]["id"] == "c1"
    assert session.messages[0]["content"] == "hi"
    assert not session.messages.dirty


# -- get_history on a session ------------------------------------------------------------
def test_get_history_uses_last_consolidated_and_options() -> None:
    session = Session("k", turns(3), last_consolidated=2)
    assert contents(session.get_history()) == ["u1", "a1", "u2", "a2"]
    assert contents(session.get_history(2)) == ["u2", "a2"]
    budgeted = session.get_history(max_tokens=30, token_counter=lambda _: 11)
    assert contents(budgeted) == ["u2", "a2"]


@pytest.mark.parametrize("bad", [7, 100, -1, -4])
def test_bad_last_consolidated_is_clamped_at_use(bad: int) -> None:
    session = Session("k", turns(3), last_consolidated=bad)
    assert contents(session.get_history()) == ["u0", "a0", "u1", "a1", "u2", "a2"]
    assert session.last_consolidated == bad  # not silently rewritten by a read


# -- clear -------------------------------------------------------------------------------
def test_clear_empties_the_same_log() -> None:
    session = saved(turns(2), last_consolidated=3, updated_at=datetime(2000, 1, 1))
    log = session.messages
    session.clear()
    assert session.messages is log and log == []
    assert session.last_consolidated == 0
    assert session.updated_at > datetime(2000, 1, 1)
    assert session.get_history() == []


# -- retain_recent_legal_suffix ----------------------------------------------------------
def test_retain_under_the_cap_changes_nothing() -> None:
    session = saved(turns(2), updated_at=datetime(2000, 1, 1))
    assert session.retain_recent_legal_suffix(4) == []
    assert len(session.messages) == 4 and session.updated_at == datetime(2000, 1, 1)


def test_retain_starts_the_tail_at_a_user_turn() -> None:
    session = saved(turns(3), updated_at=datetime(2000, 1, 1))  # u0 a0 u1 a1 u2 a2
    dropped = session.retain_recent_legal_suffix(5)
    assert dropped == [user("u0"), assistant("a0")]
    assert contents(session.messages) == ["u1", "a1", "u2", "a2"]
    assert session.updated_at > datetime(2000, 1, 1)


def test_retain_keeps_the_delivery_the_user_answers() -> None:
    messages = [
        *turns(1),
        assistant("Reminder", _channel_delivery=True),
        user("ok"),
        assistant("great"),
    ]
    session = saved(messages)
    session.retain_recent_legal_suffix(3)
    assert contents(session.messages) == ["Reminder", "ok", "great"]


def test_retain_drops_orphan_tool_results_and_keeps_the_newest_messages() -> None:
    messages = [
        user("u0"),
        assistant("", tool_calls=[call("c1"), call("c2")]),
        tool("c1"),
        tool("c2"),
        assistant("done"),
    ]
    session = saved(messages)
    dropped = session.retain_recent_legal_suffix(3)
    # nanobot v0.2.0 kept [u0, call, c1] here and lost the newest messages.
    assert contents(session.messages) == ["done"]
    assert dropped == messages[:4]


def test_retain_shifts_last_consolidated() -> None:
    session = saved(turns(3), last_consolidated=3)
    session.retain_recent_legal_suffix(4)  # drops u0, a0
    assert session.last_consolidated == 1
    assert contents(session.get_history()) == ["u2", "a2"]
    session = saved(turns(3), last_consolidated=1)
    session.retain_recent_legal_suffix(4)
    assert session.last_consolidated == 0


def test_retain_repairs_a_corrupt_last_consolidated() -> None:
    session = saved(turns(3), last_consolidated=50)
    session.retain_recent_legal_suffix(4)
    assert session.last_consolidated == 0


@pytest.mark.parametrize("max_messages", [0, -3])
def test_retain_non_positive_drops_everything(max_messages: int) -> None:
    session = saved(turns(2), last_consolidated=2)
    dropped = session.retain_recent_legal_suffix(max_messages)
    assert dropped == turns(2)
    assert session.messages == [] and session.last_consolidated == 0


def test_retain_returns_untracked_copies() -> None:
    session = saved([user("x", media=["/a.png"]), *turns(2)])
    dropped = session.retain_recent_legal_suffix(1)
    assert contents(dropped) == ["x", "u0", "a0", "u1"]
    assert all(type(m) is dict for m in dropped) and type(dropped[0]["media"]) is list
    session.messages.mark_saved("v2")
    dropped[0]["media"].append("/b.png")
    dropped[1]["content"] = "edited"
    assert not session.messages.dirty


def test_retain_always_keeps_a_legal_suffix_within_the_cap() -> None:
    pattern = [
        user("u"),
        assistant("", tool_calls=[call("c1"), call("c2")]),
        tool("c1"),
        tool("c2"),
        assistant("a"),
        assistant("Reminder", _channel_delivery=True),
    ]
    messages = [dict(m, content=f"{m['content']}{i}") for i, m in enumerate(pattern * 4)]
    for cap in range(1, len(messages) + 2):
        session = Session("k", messages)
        dropped = session.retain_recent_legal_suffix(cap)
        kept = list(session.messages)
        assert len(kept) <= cap
        assert dropped + kept == messages
        assert legal_start(kept) == 0


# -- enforce_file_cap --------------------------------------------------------------------
def test_file_cap_default_limit() -> None:
    assert FILE_MAX_MESSAGES == 2000
    session = saved(turns(1000))
    session.enforce_file_cap()
    assert len(session.messages) == 2000 and not session.messages.dirty
    session.add_message("user", "one more")
    session.enforce_file_cap()
    # 2000 from a0 on would start with an assistant message: u0 and a0 go.
    assert len(session.messages) == 1999 and session.messages[0]["content"] == "u1"


def test_file_cap_archives_exactly_the_dropped_unconsolidated_messages() -> None:
    archived: list[list[Msg]] = []
    session = saved(turns(5), last_consolidated=2)  # u0 a0 | u1 a1 u2 a2 u3 a3 u4 a4
    session.enforce_file_cap(archived.append, limit=4)
    assert archived == [[user("u1"), assistant("a1"), user("u2"), assistant("a2")]]
    assert all(type(m) is dict for m in archived[0])
    assert contents(session.messages) == ["u3", "a3", "u4", "a4"]
    assert session.last_consolidated == 0


def test_file_cap_does_not_archive_consolidated_messages() -> None:
    archived: list[list[Msg]] = []
    session = saved(turns(5), last_consolidated=8)
    session.enforce_file_cap(archived.append, limit=4)
    assert archived == []
    assert session.last_consolidated == 2
    assert contents(session.get_history()) == ["u4", "a4"]


def test_file_cap_archives_everything_dropped_when_last_consolidated_is_corrupt() -> None:
    archived: list[list[Msg]] = []
    session = saved(turns(3), last_consolidated=-1)
    session.enforce_file_cap(archived.append, limit=2)
    assert archived == [turns(2)]
    assert session.last_consolidated == 0


def test_file_cap_without_callback_still_trims() -> None:
    session = saved(turns(3))
    session.enforce_file_cap(limit=2)
    assert contents(session.messages) == ["u2", "a2"]


@pytest.mark.parametrize("limit", [0, -1, 6, 7])
def test_file_cap_within_limit_or_disabled_is_a_no_op(limit: int) -> None:
    def fail(_: list[Msg]) -> None:
        raise AssertionError("nothing to archive")

    session = saved(turns(3))
    session.enforce_file_cap(fail, limit=limit)
    assert len(session.messages) == 6 and not session.messages.dirty


def test_failed_archive_leaves_the_session_intact() -> None:
    def broken(_: list[Msg]) -> None:
        raise OSError("archive unavailable")

    session = saved(turns(3), last_consolidated=1)
    with pytest.raises(OSError):
        session.enforce_file_cap(broken, limit=2)
    assert session.messages == turns(3) and session.last_consolidated == 1
    assert not session.messages.dirty


# -- real nanobot files ------------------------------------------------------------------
FILES = {
    "nanobot-v0.2.0": {
        "telegram:12345": "telegram_12345.jsonl",
        "slack:C01:T_2": "slack_C01_T_2.jsonl",
        "cli:direct": "cli_direct.jsonl",
    },
    "nanobot-v0.3.5": {
        "telegram:12345": "dGVsZWdyYW06MTIzNDU.jsonl",
        "slack:C01:T_2": "c2xhY2s6QzAxOlRfMg.jsonl",
        "cli:direct": "Y2xpOmRpcmVjdA.jsonl",
    },
}
VERSIONS = list(FILES)


def load(version: str, key: str) -> Session:
    """Read a nanobot file as nanobot does: the last metadata line wins, the rest are messages."""
    meta: dict[str, Any] = {}
    messages: list[Msg] = []
    path = FIXTURES / version / FILES[version][key]
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        value = json.loads(line)
        if value.get("_type") == "metadata":
            meta = value
        elif "_type" not in value:
            messages.append(value)
    session = Session(
        key=meta["key"],
        messages=messages,
        created_at=datetime.fromisoformat(meta["created_at"]),
        updated_at=datetime.fromisoformat(meta["updated_at"]),
        metadata=meta["metadata"],
        last_consolidated=meta["last_consolidated"],
    )
    assert session.key == key
    return session


@pytest.mark.parametrize("version", VERSIONS)
def test_fixture_telegram(version: str) -> None:
    session = load(version, "telegram:12345")
    assert session.metadata == {"title": "Reading notes"} and session.last_consolidated == 2
    assert len(session.messages) == 7
    # The first two are consolidated; the window then starts at the "/new" command, which
    # is skipped; the image-only turn replays as its breadcrumb.
    assert session.get_history() == [
        {"role": "user", "content": "[image: /home/u/.nanobot/media/cat.png]"},
        {"role": "assistant", "content": "Nice cat! 🐱"},
    ]
    stamp = session.messages[5]["timestamp"]
    assert session.get_history(include_timestamps=True)[0]["content"] == (
        f"[Message Time: {stamp}]\n[image: /home/u/.nanobot/media/cat.png]"
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_fixture_telegram_full_history(version: str) -> None:
    session = load(version, "telegram:12345")
    session.last_consolidated = 0
    calls = session.messages[1]["tool_calls"]
    assert session.get_history() == [
        {"role": "user", "content": "Hi! Can you read my notes file? 📝"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": calls,
            "reasoning_content": "The user wants the notes.",
        },
        {
            "role": "tool",
            "content": "# Notes\n- buy milk\n- ship nanosession",
            "tool_call_id": "call_1",
            "name": "read_file",
        },
        {"role": "assistant", "content": "Your notes say: buy milk, ship nanosession."},
        {"role": "user", "content": "[image: /home/u/.nanobot/media/cat.png]"},
        {"role": "assistant", "content": "Nice cat! 🐱"},
    ]
    assert calls[0]["id"] == "call_1"


@pytest.mark.parametrize("version", VERSIONS)
def test_fixture_slack_starts_with_the_proactive_delivery(version: str) -> None:
    session = load(version, "slack:C01:T_2")
    assert session.get_history() == [
        {"role": "assistant", "content": "Reminder: stand-up in 5 minutes"},
        {"role": "user", "content": "thanks — joining now"},
        {"role": "assistant", "content": "👍"},
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_fixture_cli_keeps_blocks_and_thinking(version: str) -> None:
    session = load(version, "cli:direct")
    assert session.get_history(include_timestamps=True) == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": "It is a tiny PNG.",
            "thinking_blocks": [{"type": "thinking", "thinking": "tiny", "signature": "sig"}],
        },
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_fixture_token_budget(version: str) -> None:
    session = load(version, "telegram:12345")
    session.last_consolidated = 0
    # A budget for the last message only: the tail realigns to the image turn.
    assert contents(session.get_history(max_tokens=5)) == [
        "[image: /home/u/.nanobot/media/cat.png]",
        "Nice cat! 🐱",
    ]


def test_reversed_slice_edits_of_saved_messages_set_dirty() -> None:
    session = saved(turns(2))
    session.add_message("user", "unsaved")
    del session.messages[::-1]  # starts at the unsaved message, reaches the saved ones
    assert session.messages == [] and session.messages.dirty
    assert session.messages.unchanged_prefix("v1") == 0
