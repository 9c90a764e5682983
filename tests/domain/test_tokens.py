"""Offline token estimates: what text counts, the overhead, and pluggable counters."""

from __future__ import annotations

import json

from nanosession.tokens import (
    MESSAGE_OVERHEAD,
    TokenCounter,
    approximate_tokens,
    estimate_message_tokens,
    message_text,
)
from nanosession.tracking import MessageLog


def recording_counter(seen: list[str]) -> TokenCounter:
    def count(text: str) -> int:
        seen.append(text)
        return 0

    return count


def test_default_counter_is_characters_over_four_rounded_up() -> None:
    assert approximate_tokens("") == 0
    assert approximate_tokens("abcd") == 1
    assert approximate_tokens("abcde") == 2
    assert approximate_tokens("é" * 8) == 2  # characters, not UTF-8 bytes


def test_string_content_plus_overhead() -> None:
    assert estimate_message_tokens({"role": "user", "content": "abcdefgh"}) == 2 + 4
    assert estimate_message_tokens({"role": "user", "content": "abcdefghi"}) == 3 + 4


def test_empty_messages_cost_the_minimum() -> None:
    assert MESSAGE_OVERHEAD == 4
    assert estimate_message_tokens({}) == 4
    assert estimate_message_tokens({"role": "assistant", "content": ""}) == 4
    assert estimate_message_tokens({"role": "assistant", "content": None}) == 4
    assert estimate_message_tokens({"role": "user", "content": "x"}, lambda _: -50) == 4


def test_block_content_counts_text_blocks_by_text_and_others_as_json() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    message = {
        "role": "user",
        "content": [{"type": "text", "text": "Describe"}, image, {"type": "text", "text": ""}],
    }
    assert message_text(message) == "Describe\n" + json.dumps(image, ensure_ascii=False)


def test_every_counted_field_in_order() -> None:
    calls = [{"id": "c1", "function": {"name": "read", "arguments": '{"p": "📝"}'}}]
    message = {
        "role": "assistant",
        "content": "hi",
        "name": "reader",
        "tool_call_id": "c0",
        "tool_calls": calls,
        "reasoning_content": "think",
        "timestamp": "2026-01-01T00:00:00",  # bookkeeping: not counted
        "latency_ms": 12,
    }
    seen: list[str] = []
    estimate_message_tokens(message, recording_counter(seen))
    expected = "\n".join(["hi", "reader", "c0", json.dumps(calls, ensure_ascii=False), "think"])
    assert seen == [expected]
    assert "📝" in seen[0]  # ensure_ascii=False: emoji count as themselves


def test_non_string_non_list_content_counts_as_json() -> None:
    assert message_text({"content": {"a": 1}}) == '{"a": 1}'


def test_custom_counter_is_used() -> None:
    def words(text: str) -> int:
        return len(text.split())

    message = {"role": "user", "content": "one two three four five"}
    assert estimate_message_tokens(message, words) == 5 + 4
    assert estimate_message_tokens(message) == approximate_tokens(message["content"]) + 4


def test_tracked_messages_estimate_like_plain_ones() -> None:
    plain = {
        "role": "assistant",
        "content": [{"type": "text", "text": "x" * 40}],
        "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}],
    }
    log = MessageLog([plain])
    assert estimate_message_tokens(log[0]) == estimate_message_tokens(plain) > 4
