"""The get_history rules 1-9, one group of tests per rule, plus the output's independence."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nanosession.history import (
    DEFAULT_MAX_MESSAGES,
    align_to_user_turn,
    build_history,
    clean_assistant_text,
    drop_orphan_tool_results,
    legal_start,
    render_media,
    render_message,
    replay_start,
    select_window,
    stamp_time,
    trim_to_token_budget,
)
from nanosession.tracking import MessageLog

Msg = dict[str, Any]


def user(text: Any = "u", **extra: Any) -> Msg:
    return {"role": "user", "content": text, **extra}


def assistant(text: Any = "a", **extra: Any) -> Msg:
    return {"role": "assistant", "content": text, **extra}


def call(call_id: Any) -> Msg:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}


def tool(call_id: Any, text: str = "result") -> Msg:
    return {"role": "tool", "content": text, "tool_call_id": call_id, "name": "f"}


def contents(messages: list[Msg]) -> list[Any]:
    return [m["content"] for m in messages]


def numbered(count: int) -> list[Msg]:
    return [user(f"m{i}") for i in range(count)]


# -- rule 1: window ----------------------------------------------------------------------
def test_window_keeps_the_last_max_messages() -> None:
    assert contents(build_history(numbered(10), max_messages=3)) == ["m7", "m8", "m9"]


@pytest.mark.parametrize("max_messages", [0, -1])
def test_non_positive_max_messages_means_120(max_messages: int) -> None:
    out = build_history(numbered(130), max_messages=max_messages)
    assert DEFAULT_MAX_MESSAGES == 120
    assert len(out) == 120 and out[0]["content"] == "m10"


def test_window_starts_at_last_consolidated() -> None:
    assert contents(build_history(numbered(5), last_consolidated=3)) == ["m3", "m4"]
    assert contents(select_window(numbered(5), 2, 10)) == ["m2", "m3", "m4"]
    assert contents(select_window(numbered(5), 1, 2)) == ["m3", "m4"]


@pytest.mark.parametrize("bad", [99, 6, -1, -3, True, "2", None, 2.0])
def test_bad_last_consolidated_never_hides_history(bad: object) -> None:
    out = build_history(numbered(5), last_consolidated=bad)
    assert contents(out) == ["m0", "m1", "m2", "m3", "m4"]


def test_last_consolidated_at_the_end_means_nothing_left_to_replay() -> None:
    assert replay_start(5, 5) == 5
    assert build_history(numbered(5), last_consolidated=5) == []
    assert replay_start(6, 5) == 0 and replay_start(-1, 5) == 0 and replay_start(False, 5) == 0


# -- rule 2: start at a user turn --------------------------------------------------------
def test_history_starts_at_the_first_user_message() -> None:
    messages = [assistant("a0"), tool("x"), user("u1"), assistant("a1")]
    assert contents(build_history(messages)) == ["u1", "a1"]


def test_window_cut_mid_turn_realigns_to_next_user() -> None:
    messages = [
        user("u0"),
        assistant("", tool_calls=[call("c1")]),
        tool("c1"),
        assistant("a1"),
        user("u1"),
        assistant("a2"),
    ]
    assert contents(build_history(messages, max_messages=4)) == ["u1", "a2"]


def test_channel_delivery_before_the_first_user_message_is_kept() -> None:
    messages = [
        assistant("old"),
        assistant("Reminder", _channel_delivery=True),
        user("thanks"),
        assistant("ok"),
    ]
    assert contents(build_history(messages)) == ["Reminder", "thanks", "ok"]


def test_channel_delivery_counts_only_right_before_the_user_message() -> None:
    messages = [assistant("Reminder", _channel_delivery=True), assistant("more"), user("u")]
    assert contents(align_to_user_turn(messages)) == ["u"]


def test_without_user_message_the_window_is_kept() -> None:
    messages = [assistant("a"), assistant("b")]
    assert contents(build_history(messages)) == ["a", "b"]


# -- rule 3: orphan tool results ---------------------------------------------------------
def test_orphan_tool_results_at_the_front_are_dropped() -> None:
    messages = [
        user("u0"),
        assistant("", tool_calls=[call("c1")]),
        tool("c1"),
        tool("c1b"),
        assistant("done"),
    ]
    # Consolidation cut right after the call: its results are orphans now.
    assert contents(build_history(messages, last_consolidated=2)) == ["done"]
    assert contents(drop_orphan_tool_results([tool("x"), assistant("a")])) == ["a"]


def test_tool_results_with_their_call_are_kept() -> None:
    messages = [
        user("u"),
        assistant("", tool_calls=[call("c1"), call("c2")]),
        tool("c1", "r1"),
        tool("c2", "r2"),
        assistant("a"),
    ]
    assert contents(build_history(messages)) == ["u", "", "r1", "r2", "a"]


@pytest.mark.parametrize(("issued", "answered"), [(7, "7"), ("7", 7), (7, 7)])
def test_tool_call_ids_are_compared_as_strings(issued: Any, answered: Any) -> None:
    messages = [user("u"), assistant("", tool_calls=[call(issued)]), tool(answered, "r")]
    assert legal_start(messages) == 0
    assert contents(build_history(messages)) == ["u", "", "r"]


def test_a_call_issued_later_does_not_legitimise_an_earlier_result() -> None:
    messages = [tool("c1", "early"), assistant("", tool_calls=[call("c1")]), tool("c1", "r")]
    assert legal_start(messages) == 1


def test_an_orphan_later_in_the_slice_drops_everything_before_it() -> None:
    messages = [
        user("u"),
        assistant("", tool_calls=[call("c1")]),
        tool("c1"),
        tool("zz"),
        assistant("after"),
        assistant("", tool_calls=[call("c1")]),
        tool("c1", "again"),
    ]
    # Ids issued before the orphan are forgotten with the dropped part: "c1" is re-issued.
    assert legal_start(messages) == 4
    assert contents(build_history(messages)) == ["after", "", "again"]


def test_calls_issued_before_an_orphan_do_not_cover_results_after_it() -> None:
    messages = [user("u"), assistant("", tool_calls=[call("c1")]), tool("zz"), tool("c1")]
    assert legal_start(messages) == 4
    assert build_history(messages) == []


def test_tool_message_without_call_id_is_not_an_orphan() -> None:
    assert legal_start([user("u"), {"role": "tool", "content": "r"}]) == 0


# -- rule 4: commands and empty assistant messages ---------------------------------------
def test_command_messages_are_skipped() -> None:
    messages = [
        user("/new", _command=True),
        user("hi"),
        assistant("/stop", _command=True),
        assistant("hello"),
    ]
    assert contents(build_history(messages)) == ["hi", "hello"]


@pytest.mark.parametrize("blank", ["", "   \n", None, []])
def test_blank_assistant_messages_are_skipped(blank: Any) -> None:
    messages = [user("u"), assistant(blank), assistant("ok")]
    assert contents(build_history(messages)) == ["u", "ok"]


@pytest.mark.parametrize(
    "carrier",
    [
        {"tool_calls": [call("c1")]},
        {"reasoning_content": "thinking about it"},
        {"thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}]},
    ],
)
def test_blank_assistant_messages_with_a_carrier_are_kept(carrier: Msg) -> None:
    out = build_history([user("u"), assistant("", **carrier)])
    assert out == [
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": "", **carrier},
    ]


@pytest.mark.parametrize(
    "empty", [{"tool_calls": []}, {"reasoning_content": ""}, {"thinking_blocks": None}]
)
def test_empty_carriers_do_not_keep_a_blank_assistant_message(empty: Msg) -> None:
    assert contents(build_history([user("u"), assistant("", **empty)])) == ["u"]


def test_assistant_left_blank_by_cleaning_is_skipped() -> None:
    messages = [
        user("u"),
        assistant("[Message Time: 2026-01-01T10:00]\n"),
        assistant('message(content="hi")'),
        assistant("real"),
    ]
    assert contents(build_history(messages)) == ["u", "real"]


def test_blank_user_and_tool_messages_are_kept() -> None:
    messages = [user(""), assistant("", tool_calls=[call("c")]), tool("c", "")]
    assert contents(build_history(messages)) == ["", "", ""]


# -- rule 5: assistant replay artifacts --------------------------------------------------
def test_leading_message_time_line_is_removed() -> None:
    assert clean_assistant_text("[Message Time: 2026-11-24T07:37:28]\nHello") == "Hello"
    assert clean_assistant_text("[Message Time: 2026-11-24]Hello") == "Hello"


def test_message_time_is_removed_only_at_the_start() -> None:
    text = "Hi\n[Message Time: 2026-11-24]\nthere"
    assert clean_assistant_text(text) == text


def test_local_image_breadcrumb_lines_are_removed() -> None:
    text = "Here it is\n[image: /tmp/cat.png]\n[image: ~/dog.png]  \nbye"
    assert clean_assistant_text(text) == "Here it is\nbye"


def test_remote_or_inline_image_mentions_stay() -> None:
    text = "[image: https://example.com/cat.png]\nsee [image: /tmp/a.png] above"
    assert clean_assistant_text(text) == text


def test_tool_call_echo_lines_are_removed() -> None:
    text = 'Sending\nmessage(content="hi")\n  generate_image(prompt="cat")  \nprint(x)'
    assert clean_assistant_text(text) == "Sending\nprint(x)"


def test_cleaning_strips_surrounding_whitespace() -> None:
    assert clean_assistant_text("  hi  \n\n") == "hi"


@pytest.mark.parametrize("marker", ["", "\n[image: /tmp/a.png]"])
def test_line_breaks_come_out_as_newlines_with_or_without_lines_to_drop(marker: str) -> None:
    # nanobot splits on every line break Python knows and re-joins with "\n"; the path
    # without breadcrumbs or echoes to drop must do the same.
    text = f"one\r\ntwo\rthree\u2028four\x0cfive{marker}\n"
    assert clean_assistant_text(text) == "one\ntwo\nthree\nfour\nfive"


def test_only_assistant_text_is_cleaned() -> None:
    stamped = "[Message Time: 2026-11-24]\nhello"
    blocks = [{"type": "text", "text": stamped}]
    out = build_history([user(stamped), assistant(blocks), assistant(stamped)])
    assert contents(out) == [stamped, blocks, "hello"]


# -- rule 6: media -----------------------------------------------------------------------
def test_image_only_user_turn_gets_image_lines() -> None:
    out = build_history([user("", media=["/m/cat.png"]), assistant("Nice cat")])
    assert out[0] == {"role": "user", "content": "[image: /m/cat.png]"}


def test_media_lines_follow_the_text() -> None:
    out = build_history([user("look", media=["/a.png", "/b.png"])])
    assert out[0]["content"] == "look\n[image: /a.png]\n[image: /b.png]"


def test_invalid_media_entries_are_ignored() -> None:
    assert render_media("x", ["", None, 3, "/c.png"]) == "x\n[image: /c.png]"
    assert render_media("x", ["", None]) == "x"
    assert render_media("x", "/not-a-list.png") == "x"


def test_media_is_rendered_for_user_text_only() -> None:
    blocks = [{"type": "text", "text": "hi"}]
    out = build_history([user(blocks, media=["/a.png"]), assistant("a", media=["/b.png"])])
    assert contents(out) == [blocks, "a"]


# -- rule 7: timestamps ------------------------------------------------------------------
def test_timestamps_only_on_user_messages_when_asked() -> None:
    ts = "2026-11-24T07:37:28.872680"
    messages = [
        user("hi", timestamp=ts),
        assistant("", tool_calls=[call("c")], timestamp=ts),
        tool("c", "r") | {"timestamp": ts},
        assistant("yo", timestamp=ts),
    ]
    stamped = build_history(messages, include_timestamps=True)
    assert contents(stamped) == [f"[Message Time: {ts}]\nhi", "", "r", "yo"]
    assert contents(build_history(messages)) == ["hi", "", "r", "yo"]


def test_timestamp_is_the_first_line_above_media() -> None:
    out = build_history([user("", media=["/a.png"], timestamp="T")], include_timestamps=True)
    assert out[0]["content"] == "[Message Time: T]\n[image: /a.png]"


def test_user_message_without_timestamp_is_unchanged() -> None:
    assert contents(build_history([user("hi")], include_timestamps=True)) == ["hi"]
    assert stamp_time([{"type": "text", "text": "x"}], "T") == [{"type": "text", "text": "x"}]


# -- rule 8: fields ----------------------------------------------------------------------
def test_output_keeps_only_replay_fields() -> None:
    stored = {
        "role": "assistant",
        "content": "x",
        "timestamp": "T",
        "tool_calls": [call("c")],
        "tool_call_id": "p",
        "name": "n",
        "reasoning_content": "r",
        "thinking_blocks": [{}],
        "media": ["/a.png"],
        "latency_ms": 5,
        "_channel_delivery": True,
        "sender_id": "1",
        "injected_event": "e",
        "extra": {"anything": 1},
    }
    assert set(build_history([stored])[0]) == {
        "role",
        "content",
        "tool_calls",
        "tool_call_id",
        "name",
        "reasoning_content",
        "thinking_blocks",
    }


def test_missing_content_replays_as_empty_text() -> None:
    assert render_message({"role": "user"}) == {"role": "user", "content": ""}


def test_output_is_plain_dicts_independent_of_the_stored_messages() -> None:
    log = MessageLog(
        [user([{"type": "text", "text": "hi"}]), assistant("", tool_calls=[call("c1")]), tool("c1")]
    )
    log.mark_saved("v1")
    out = build_history(log)
    for entry, stored in zip(out, log, strict=True):
        assert type(entry) is dict and entry is not stored
    assert type(out[0]["content"]) is list and type(out[0]["content"][0]) is dict
    assert type(out[1]["tool_calls"][0]) is dict
    out[0]["content"][0]["text"] = "edited"
    out[1]["tool_calls"][0]["id"] = "edited"
    out[1]["tool_calls"].append(call("x"))
    out[2]["content"] = "edited"
    assert log[0]["content"][0]["text"] == "hi"
    assert log[1]["tool_calls"] == [call("c1")]
    assert log[2]["content"] == "result"
    assert not log.dirty


# -- rule 9: token budget ----------------------------------------------------------------
def ten(_: str) -> int:
    """Every non-empty message costs 10 + 4 = 14 tokens."""
    return 10


def test_budget_keeps_the_longest_tail_that_fits() -> None:
    messages = [user("u1"), assistant("a1"), user("u2"), assistant("a2")]
    everything = build_history(messages, max_tokens=56, token_counter=ten)
    assert contents(everything) == ["u1", "a1", "u2", "a2"]
    assert contents(build_history(messages, max_tokens=55, token_counter=ten)) == ["u2", "a2"]


def test_budget_tail_is_realigned_to_a_user_turn() -> None:
    messages = [user("u1"), assistant("a1"), user("u2"), assistant("a2")]
    # 42 fits [a1, u2, a2]; it must not start with the assistant.
    assert contents(build_history(messages, max_tokens=42, token_counter=ten)) == ["u2", "a2"]


def test_budget_recovers_the_nearest_earlier_user_turn() -> None:
    messages = [
        user("u0"),
        assistant("a0"),
        user("u1"),
        assistant("a1"),
        assistant("a2"),
        assistant("a3"),
    ]
    # 28 fits [a2, a3] only: no user turn, so u1 comes back although over budget.
    out = build_history(messages, max_tokens=28, token_counter=ten)
    assert contents(out) == ["u1", "a1", "a2", "a3"]


def test_budget_always_keeps_at_least_one_message() -> None:
    assert contents(build_history([user("x" * 4000)], max_tokens=1)) == ["x" * 4000]
    out = build_history([assistant("a1"), assistant("a2")], max_tokens=1, token_counter=ten)
    assert contents(out) == ["a2"]


def test_budget_drops_orphan_tool_results_again() -> None:
    messages = [assistant("", tool_calls=[call("c1")]), tool("c1", "r"), assistant("done")]
    # 28 fits [tool, done]; no user turn to recover, and the result lost its call.
    assert contents(build_history(messages, max_tokens=28, token_counter=ten)) == ["done"]
    out = build_history(messages, max_tokens=42, token_counter=ten)
    assert contents(out) == ["", "r", "done"]


def test_default_counter_is_characters_over_four() -> None:
    messages = [user("x" * 40), assistant("y" * 40)]  # 10 + 4 tokens each
    assert len(build_history(messages, max_tokens=28)) == 2
    assert contents(build_history(messages, max_tokens=27)) == ["x" * 40, "y" * 40]  # recovered
    assert contents(trim_to_token_budget([assistant("y" * 40)] * 2, 27)) == ["y" * 40]


def test_budget_counts_what_is_replayed() -> None:
    ts = "2026-11-24T07:37:28.872680"
    messages = [user("a" * 8, timestamp=ts), user("b" * 8, timestamp=ts)]
    assert len(build_history(messages, max_tokens=12)) == 2  # 2 + 4 each
    stamped = build_history(messages, max_tokens=12, include_timestamps=True)
    assert contents(stamped) == [f"[Message Time: {ts}]\n" + "b" * 8]


def test_no_budget_means_no_trimming() -> None:
    messages = numbered(50)
    assert len(build_history(messages, max_tokens=0, token_counter=ten)) == 50
    assert trim_to_token_budget([], 10) == []


@settings(max_examples=1000, deadline=None)
@given(parts=st.lists(st.sampled_from(
    ["a", " ", "\n", "\r", "\r\n", "\x0b", "\x1c", "\x85", "\u2028", "é", "\t",
     "[image: /x.png]", "[image: https://x]", "message(x)", "generate_image(y)",
     "[Message Time: 1]"]), max_size=14))
def test_cleaning_shortcuts_give_what_splitting_and_filtering_every_line_gives(
    parts: list[str],
) -> None:
    text = "".join(parts)
    full = text
    if full.startswith("[Message Time: "):
        full = re.sub(r"\A\[Message Time: [^\]]+\]\n?", "", full, count=1)
    kept = [line for line in full.splitlines()
            if not re.fullmatch(r"\[image: [/~][^\]]+\]\s*", line)
            and not re.fullmatch(r"\s*(?:generate_image|message)\([^)]*\)\s*", line)]
    assert clean_assistant_text(text) == "\n".join(kept).strip()
