"""Delta saves are invisible: whatever happens to a session, a fresh load gives it back.

A hypothesis state machine drives one session through random mutations (appends, in-place
edits of saved messages at top level and nested, inserts, deletes, ``clear``, trimming,
consolidation marks, metadata, reassigning ``messages``), saves and manager restarts.
After every save a NEW manager loads the session and must see exactly the in-memory one,
the file must hold exactly what the save promised (pure appends grow it by the new
message lines plus one metadata line; anything else is a compact full rewrite), and the
long-lived store's listing must describe the latest state.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from nanosession_local.backend import HEAD, TAIL

from nanosession import SessionManager
from nanosession.jsonl import encode, message_lines, meta_line
from nanosession.keys import storage_name
from nanosession.record import SessionRecord, preview_of, title_of

KEY = "telegram:42"

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # past 64 bits too: both JSON readers must give them back exactly
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["naïve ✓ 🚀", "\ud83d lone surrogate", "line\nbreak", ""])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
contents = st.text(max_size=60) | st.sampled_from(["", "   ", "x" * 6000, "日本語 " * 900])
tool_calls = st.lists(
    st.fixed_dictionaries({
        "id": st.text(min_size=1, max_size=8),
        "type": st.just("function"),
        "function": st.fixed_dictionaries({"name": st.sampled_from(["exec", "read_file"]),
                                           "arguments": st.text(max_size=30)}),
    }),
    min_size=1,
    max_size=2,
)
messages = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool"]), "content": contents},
    optional={"tool_calls": tool_calls, "tool_call_id": st.text(max_size=8),
              "meta": json_values, "_channel_delivery": st.booleans()},
)
indexes = st.integers(min_value=0, max_value=10_000)
access = st.sampled_from(["index", "negative", "slice", "reversed slice", "iteration",
                          "reversed"])


def state(session: Any) -> tuple[Any, ...]:
    """Everything a save must persist, as plain data (read without adopting anything, so
    restored messages stay untracked until a rule hands them out)."""
    return (
        session.key,
        copy.deepcopy(session.messages),
        copy.deepcopy(session.metadata),
        session.created_at,
        session.updated_at,
        session.last_consolidated,
    )


def record_of(session: Any) -> SessionRecord:
    return SessionRecord(
        key=session.key,
        messages=copy.deepcopy(session.messages),
        metadata=session.metadata,
        created_at=session.created_at,
        updated_at=session.updated_at,
        last_consolidated=session.last_consolidated,
    )


class DeltaSaves(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="ns-delta-"))
        self.path = self.root / (storage_name(KEY) + ".jsonl")
        self.manager = SessionManager.from_url(str(self.root))
        self.session = self.manager.get_or_create(KEY)
        self.saved: tuple[Any, ...] | None = None  # what the last save persisted
        self.appends = 0

    def teardown(self) -> None:
        self.manager.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- mutations ---------------------------------------------------------------
    @rule(message=messages)
    def add_message(self, message: dict[str, Any]) -> None:
        extra = {k: v for k, v in message.items() if k not in ("role", "content")}
        self.session.add_message(message["role"], message["content"], **extra)

    def _pick(self, i: int, via: str = "index") -> Any:
        """A message, preferably an already saved one: edits there must not be missed.

        ``via`` is how it is reached: after a restart the saved messages are the loaded
        ones, which the log hands out (and starts tracking) only on access.
        """
        log = self.session.messages
        n = i % (min(log.saved_count, len(log)) or len(log))
        if via == "negative":
            return log[n - len(log)]
        if via == "slice":
            return log[n : n + 2][0]
        if via == "reversed slice":
            return log[::-1][len(log) - 1 - n]
        if via == "iteration":
            return next(m for k, m in enumerate(log) if k == n)
        if via == "reversed":
            return list(reversed(log))[len(log) - 1 - n]
        return log[n]

    @precondition(lambda self: len(self.session.messages) > 0)
    @rule(i=indexes, value=json_values, via=access)
    def edit_top_level(self, i: int, value: Any, via: str) -> None:
        self._pick(i, via)["content"] = value

    @precondition(lambda self: len(self.session.messages) > 0)
    @rule(i=indexes, value=json_values, via=access)
    def edit_nested(self, i: int, value: Any, via: str) -> None:
        message = self._pick(i, via)
        calls, meta = message.get("tool_calls"), message.get("meta")
        if isinstance(calls, list) and calls and isinstance(calls[0], dict):
            calls[0]["function"]["arguments"] = value  # a dict inside a list inside
        elif isinstance(meta, dict):
            meta["edited"] = value
        elif isinstance(meta, list):
            meta.append(value)
        else:
            message.setdefault("_nest", {"items": []})["items"].append(value)

    @precondition(lambda self: len(self.session.messages) > 0)
    @rule(i=indexes)
    def pop_key(self, i: int) -> None:
        self._pick(i).pop("content", None)

    @rule(i=indexes, message=messages)
    def insert(self, i: int, message: dict[str, Any]) -> None:
        self.session.messages.insert(i % (len(self.session.messages) + 1), message)

    @precondition(lambda self: len(self.session.messages) > 0)
    @rule(i=indexes)
    def delete(self, i: int) -> None:
        del self.session.messages[i % len(self.session.messages)]

    @rule()
    def clear(self) -> None:
        self.session.clear()

    @rule(n=st.integers(min_value=-1, max_value=12))
    def retain_recent_legal_suffix(self, n: int) -> None:
        self.session.retain_recent_legal_suffix(n)

    @rule(limit=st.integers(min_value=0, max_value=12))
    def enforce_file_cap(self, limit: int) -> None:
        archived: list[Any] = []
        self.session.enforce_file_cap(archived.extend, limit=limit)

    @rule(n=st.integers(min_value=0, max_value=40))
    def consolidate(self, n: int) -> None:
        self.session.last_consolidated = n

    @rule(name=st.sampled_from(["title", "lang", "goal"]), value=json_values)
    def set_metadata(self, name: str, value: Any) -> None:
        self.session.metadata[name] = value

    @rule()
    def reassign_messages(self) -> None:
        self.session.messages = [dict(m) for m in self.session.messages]

    # -- persistence -------------------------------------------------------------
    @rule(durable=st.booleans())
    def save(self, durable: bool) -> None:
        log = self.session.messages
        before = self.path.read_bytes() if self.path.exists() else None
        unchanged = log.unchanged_prefix(log.saved_tag)  # 0 after any edit of saved ones
        pure_append = before is not None and log.saved_tag is not None and (
            unchanged == log.saved_count  # nothing stored was touched (or nothing is stored)
        )
        new = list(log[unchanged:])
        self.manager.save(self.session, fsync=durable)
        self.saved = state(self.session)
        after = self.path.read_bytes()
        record = record_of(self.session)
        if pure_append:
            delta = message_lines(new) + meta_line(record, len(record.messages))
            if after == before + delta:
                self.appends += 1
                return
            # Not an append: it must be the compaction of superseded metadata lines.
            assert before is not None and before.count(b'"_type":"metadata"') > 1
        assert after == encode(record), "a rewrite must leave exactly one compact encoding"

    @rule()
    def restart_manager(self) -> None:
        self.save(durable=False)
        self.manager.close()
        self.manager = SessionManager.from_url(str(self.root))
        self.session = self.manager.get_or_create(KEY)
        assert state(self.session) == self.saved

    # -- what must always hold --------------------------------------------------------
    @invariant()
    def fresh_load_gives_the_last_save(self) -> None:
        if self.saved is None:
            return
        fresh = SessionManager.from_url(str(self.root))
        try:
            loaded = fresh.get_or_create(KEY)
            assert state(loaded) == self.saved
            assert loaded.messages.saved_count == len(loaded.messages)
        finally:
            fresh.close()

    @invariant()
    def listing_describes_the_last_save(self) -> None:
        if self.saved is None:
            return
        _, saved_messages, metadata, _, updated_at, _ = self.saved
        (info,) = self.manager.store.list(details=True)  # the long-lived store's listing
        assert info.key == KEY
        assert info.updated_at == updated_at
        assert info.title == title_of(metadata)
        assert info.message_count in (len(saved_messages), None)
        if self.path.stat().st_size <= HEAD + TAIL:  # bigger files: preview from the head
            assert info.message_count == len(saved_messages)
            assert info.preview == preview_of(saved_messages)


DeltaSaves.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_delta_saves = DeltaSaves.TestCase


def test_appends_grow_the_file_by_exactly_the_new_lines(tmp_path: Path) -> None:
    """O(k) bytes per save: one message line plus one metadata line, at any length."""
    manager = SessionManager.from_url(str(tmp_path))
    session = manager.get_or_create(KEY)
    path = tmp_path / (storage_name(KEY) + ".jsonl")
    growth = []
    for i in range(300):
        session.add_message("tool", f"result {i} " + "data " * 200, tool_call_id=f"c{i}")
        size = path.stat().st_size if path.exists() else 0
        manager.save(session)
        if i:
            record = record_of(session)
            expected = len(message_lines(session.messages[-1:])) + len(
                meta_line(record, len(session.messages))
            )
            growth.append((path.stat().st_size - size, expected))
    assert all(got == want for got, want in growth)
    assert path.stat().st_size > 300 * 1000  # while the file itself grew to 300 messages


def test_files_stay_readable_by_nanobot(tmp_path: Path) -> None:
    """nanobot 0.3.5's own reader sees our appended files as we do (last metadata wins)."""
    nanobot = pytest.importorskip("nanobot.session.manager")
    theirs = nanobot.SessionManager(tmp_path / "ws", sessions_root=tmp_path / "nb")
    ours = SessionManager.from_url(str(theirs.sessions_dir))
    session = ours.get_or_create(KEY)
    for i in range(20):
        session.add_message("user" if i % 2 == 0 else "assistant", f"message {i} ✓")
        ours.save(session)
    session.metadata["title"] = "Appended"
    session.last_consolidated = 4
    session.add_message("user", "last")
    ours.save(session)
    assert theirs.sessions_dir.joinpath(storage_name(KEY) + ".jsonl").read_bytes().count(
        b'"_type":"metadata"'
    ) > 1  # really appended, several metadata lines
    loaded = theirs.get_or_create(KEY)
    assert loaded.messages == [dict(m) for m in session.messages]
    assert loaded.metadata == {"title": "Appended"}
    assert loaded.last_consolidated == 4
    assert loaded.updated_at == session.updated_at


def _nested_list_edit(s: Any) -> None:
    s.messages[1]["tool_calls"].append({"id": "c2", "type": "function"})


def _nested_dict_in_list_edit(s: Any) -> None:
    s.messages[1]["tool_calls"][0]["function"]["arguments"] = '{"path": "/etc"}'


def _retain(s: Any) -> None:
    s.retain_recent_legal_suffix(3)


def _cap(s: Any) -> None:
    s.enforce_file_cap(limit=3)


MUTATIONS = {
    "top-level edit": lambda s: s.messages[0].__setitem__("content", "edited"),
    "key removed": lambda s: s.messages[0].pop("content"),
    "dict update": lambda s: s.messages[2].update(name="renamed"),
    "nested list edit": _nested_list_edit,
    "nested dict in list edit": _nested_dict_in_list_edit,
    "insert": lambda s: s.messages.insert(1, {"role": "user", "content": "inserted"}),
    "delete": lambda s: s.messages.__delitem__(0),
    "slice replace": lambda s: s.messages.__setitem__(slice(0, 2), [{"role": "user"}]),
    "clear": lambda s: s.clear(),
    "retain_recent_legal_suffix": _retain,
    "enforce_file_cap": _cap,
    "reassign messages": lambda s: setattr(s, "messages", list(reversed(s.messages))),
}


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_every_kind_of_edit_is_saved_as_an_atomic_rewrite(tmp_path: Path, mutate: Any) -> None:
    manager = SessionManager.from_url(str(tmp_path))
    session = manager.get_or_create(KEY)
    session.add_message("user", "run ls ✓")
    session.add_message("assistant", "", tool_calls=[
        {"id": "c1", "type": "function", "function": {"name": "exec", "arguments": "{}"}}])
    session.add_message("tool", "a\nb", tool_call_id="c1", name="exec")
    for i in range(4):
        session.add_message("user" if i % 2 == 0 else "assistant", f"turn {i}")
    manager.save(session)
    path = tmp_path / (storage_name(KEY) + ".jsonl")
    inode = path.stat().st_ino
    mutate(session)
    manager.save(session)
    assert path.stat().st_ino != inode  # replaced by rename, never edited in place
    assert path.read_bytes() == encode(record_of(session))
    fresh = SessionManager.from_url(str(tmp_path)).get_or_create(KEY)
    assert state(fresh) == state(session)


def test_a_long_lived_listing_sees_every_other_writer(tmp_path: Path) -> None:
    """Remembered listing entries are checked against each file's stat on every listing."""
    reader = SessionManager.from_url(str(tmp_path))
    writer = SessionManager.from_url(str(tmp_path))
    session = writer.get_or_create(KEY)
    session.add_message("user", "first question")
    writer.save(session)
    (before,) = reader.store.list()
    session.add_message("assistant", "an answer")  # an append by another manager
    session.metadata["title"] = "Renamed"
    writer.save(session)
    (after,) = reader.store.list()
    assert (before.message_count, before.title) == (1, None)
    assert (after.message_count, after.title) == (2, "Renamed")
    assert after.updated_at == session.updated_at
    session.messages[0]["content"] = "first question, edited"  # a rewrite: new inode
    writer.save(session)
    (rewritten,) = reader.store.list()
    assert rewritten.preview == "first question, edited"
    other = writer.get_or_create("slack:7")
    other.add_message("user", "hi")
    writer.save(other)
    assert {i.key for i in reader.store.list()} == {KEY, "slack:7"}
    writer.delete_session(KEY)
    assert [i.key for i in reader.store.list()] == ["slack:7"]
